//! The webhook channel: an HTTP POST of JSON, signed as Standard Webhooks
//! do when a secret is set (SPEC §6).

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{KeyInit, Mac};
use sha2::Sha256;

use super::DeliveryError;

/// The signing key from a secret as written: `whsec_<base64>` is decoded,
/// as Standard Webhooks libraries do; anything else is used as its bytes.
/// Surrounding white space is never part of the key.
pub fn key(secret: &str) -> Vec<u8> {
    let secret = secret.trim();
    secret
        .strip_prefix("whsec_")
        .and_then(|b| B64.decode(b).ok())
        .unwrap_or_else(|| secret.as_bytes().to_vec())
}

/// `v1,` + base64(HMAC-SHA256(key, id.timestamp.body)).
pub fn signature(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = hmac::Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1,{}", B64.encode(mac.finalize().into_bytes()))
}

/// The environment variable holding a channel's secret.
pub fn secret_env(channel: &str) -> String {
    super::channel_env("VEILLE_WEBHOOK_SECRET_", channel)
}

/// Posts `body`; 2xx is success; 401, 403 and 407 (a refused login) and a
/// connection that cannot be made (refused, TLS, name) are the channel's
/// fault; other 4xx but 408 and 429 are permanent; everything else (5xx,
/// 408, 429, 3xx, no answer) is retried.
pub async fn post(
    client: &reqwest::Client,
    url: &url::Url,
    id: &str,
    secret: Option<&[u8]>,
    body: Vec<u8>,
    now: i64,
    limit: Duration,
) -> Result<(), DeliveryError> {
    let mut request = client
        .post(url.clone())
        .timeout(limit)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header("webhook-id", id)
        .header("webhook-timestamp", now.to_string());
    if let Some(key) = secret {
        request = request.header("webhook-signature", signature(key, id, now, &body));
    }
    let response = request.body(body).send().await.map_err(|e| {
        let connect = e.is_connect();
        let msg = format!(
            "webhook {}: {}",
            host(url),
            super::error_text(&e.without_url())
        );
        if connect {
            DeliveryError::Channel(msg)
        } else {
            DeliveryError::Transient(msg)
        }
    })?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let msg = format!("webhook {}: HTTP {status}", host(url));
    if matches!(status.as_u16(), 401 | 403 | 407) {
        Err(DeliveryError::Channel(msg))
    } else if status.is_client_error() && status.as_u16() != 408 && status.as_u16() != 429 {
        Err(DeliveryError::Permanent(msg))
    } else {
        Err(DeliveryError::Transient(msg))
    }
}

/// The host only: a webhook URL's path often holds a token.
fn host(url: &url::Url) -> String {
    match (url.host_str(), url.port()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_owned(),
        _ => "?".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_follows_standard_webhooks() {
        // The example of the Standard Webhooks specification.
        let key = key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            signature(&key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
        // A plain secret is its trimmed bytes.
        assert_eq!(super::key("  s3cret\n"), b"s3cret");
        // Not base64 after the prefix: taken as written.
        assert_eq!(super::key("whsec_!!"), b"whsec_!!");
    }

    #[test]
    fn secret_env_names() {
        assert_eq!(secret_env("equipe"), "VEILLE_WEBHOOK_SECRET_EQUIPE");
        assert_eq!(
            secret_env("slack-veille.2"),
            "VEILLE_WEBHOOK_SECRET_SLACK_VEILLE_2"
        );
    }
}
