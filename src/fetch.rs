//! Fetching a feed over HTTP(S) or from a file (SPEC §7). Owns reqwest.
//!
//! - Conditional GET with the stored `ETag` / `Last-Modified`.
//! - gzip, brotli and deflate are decoded by reqwest; the body is read in
//!   chunks and the fetch fails once the *decoded* size passes `max_body`.
//! - The whole fetch, every redirect hop and the body included, is bounded
//!   by `timeout`.
//! - Redirects are followed here, not by reqwest, to count them (at most 5),
//!   to remember a permanent move and to refuse a hop from a public address
//!   to a loopback, private or link-local one (checked on IP literals and on
//!   what a name resolves to, at every hop).

use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{Client, StatusCode};
use tokio::io::AsyncReadExt;
use url::Url;

/// Redirects followed before giving up.
pub const MAX_REDIRECTS: usize = 5;

/// Installs the process-wide TLS provider (ring); harmless when repeated.
pub fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

#[derive(Debug, Clone)]
pub struct Fetcher {
    client: Client,
    /// For articles' pages: its resolver never gives a link-local address
    /// (`PageResolver`).
    pages: Client,
    max_body: u64,
    timeout: Duration,
}

/// What the store remembers between fetches.
#[derive(Debug, Clone, Default)]
pub struct Validators {
    pub etag: Option<String>,
    pub last_modified: Option<String>,
}

#[derive(Debug)]
pub enum FetchOutcome {
    /// A body (status 2xx) to parse.
    Fetched(Fetched),
    /// 304 Not Modified.
    NotModified {
        permanent_redirect: Option<Url>,
    },
    Failed(FetchError),
}

impl FetchOutcome {
    /// The target of an unbroken chain of 301/308 met on the way, if any.
    pub fn permanent_redirect(&self) -> Option<&Url> {
        match self {
            FetchOutcome::Fetched(f) => f.permanent_redirect.as_ref(),
            FetchOutcome::NotModified { permanent_redirect } => permanent_redirect.as_ref(),
            FetchOutcome::Failed(e) => e.permanent_redirect.as_ref(),
        }
    }
}

#[derive(Debug)]
pub struct Fetched {
    pub status: u16,
    pub body: Vec<u8>,
    /// The `charset` of `Content-Type`.
    pub charset: Option<String>,
    /// `Content-Type` without its parameters, lower-cased.
    pub media_type: Option<String>,
    pub validators: Validators,
    /// Where the document was finally found (to resolve relative links).
    pub final_url: Option<Url>,
    /// The target of an unbroken chain of 301/308 from the requested URL.
    pub permanent_redirect: Option<Url>,
}

#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct FetchError {
    pub status: Option<u16>,
    pub message: String,
    /// 410 Gone.
    pub gone: bool,
    /// From `Retry-After` on a 429 or 503.
    pub retry_after: Option<RetryAfter>,
    pub permanent_redirect: Option<Url>,
}

impl FetchError {
    fn new(message: impl Into<String>) -> FetchError {
        FetchError {
            status: None,
            message: message.into(),
            gone: false,
            retry_after: None,
            permanent_redirect: None,
        }
    }
}

impl Fetcher {
    pub fn new(user_agent: &str, timeout: Duration, max_body: u64) -> anyhow::Result<Fetcher> {
        let builder = || {
            Client::builder()
                .user_agent(user_agent)
                .timeout(timeout)
                .connect_timeout(timeout.min(Duration::from_secs(10)))
                .redirect(reqwest::redirect::Policy::none())
        };
        Ok(Fetcher {
            client: builder().build()?,
            pages: builder()
                .dns_resolver(std::sync::Arc::new(PageResolver))
                .build()?,
            max_body,
            timeout,
        })
    }

    /// Fetches `url`; never panics, never outlives `timeout` by much.
    pub async fn fetch_http(&self, url: &Url, validators: &Validators) -> FetchOutcome {
        self.bounded(self.follow(url, validators, &Guard::Feed))
            .await
    }

    /// Fetches an article's page (full text, SPEC §7), found in the feed at
    /// `feed` (`None`: a local file). The link was chosen by whoever writes
    /// the feed, not by the user: it may not lead, itself or by a redirect,
    /// to a non-public address unless the feed is on one, and never to a
    /// link-local one (where cloud machines answer with their secrets).
    pub async fn fetch_page(&self, url: &Url, feed: Option<&Url>) -> FetchOutcome {
        if let Err(why) = page_allowed(url, feed).await {
            return FetchOutcome::Failed(FetchError::new(why));
        }
        let guard = Guard::Page {
            feed: feed.cloned(),
        };
        self.bounded(self.follow(url, &Validators::default(), &guard))
            .await
    }

    async fn bounded(&self, fetch: impl Future<Output = FetchOutcome>) -> FetchOutcome {
        match tokio::time::timeout(self.timeout, fetch).await {
            Ok(outcome) => outcome,
            Err(_) => FetchOutcome::Failed(FetchError::new(format!(
                "timed out after {}",
                humantime::format_duration(self.timeout)
            ))),
        }
    }

    async fn follow(&self, start: &Url, validators: &Validators, guard: &Guard) -> FetchOutcome {
        let mut url = start.clone();
        let mut permanent: Option<Url> = None;
        let mut all_permanent = true;
        for hop in 0..=MAX_REDIRECTS {
            let client = match guard {
                Guard::Feed => &self.client,
                Guard::Page { .. } => &self.pages,
            };
            let response = match client
                .get(url.clone())
                .headers(conditional_headers(validators))
                .send()
                .await
            {
                Ok(r) => r,
                Err(e) => {
                    return FetchOutcome::Failed(FetchError {
                        permanent_redirect: permanent,
                        ..FetchError::new(describe_reqwest(&e))
                    });
                }
            };
            let status = response.status();
            if status.is_redirection() && status != StatusCode::NOT_MODIFIED {
                let next = match redirect_target(&url, response.headers()) {
                    Some(next) => next,
                    None => {
                        return FetchOutcome::Failed(FetchError {
                            status: Some(status.as_u16()),
                            ..FetchError::new(format!("HTTP {status} without a usable Location"))
                        });
                    }
                };
                if hop == MAX_REDIRECTS {
                    break;
                }
                let checked = match guard {
                    Guard::Feed => check_hop(start, &next).await,
                    Guard::Page { .. } => guard.check(&next).await,
                };
                if let Err(why) = checked {
                    return FetchOutcome::Failed(FetchError {
                        permanent_redirect: permanent,
                        ..FetchError::new(why)
                    });
                }
                all_permanent &= matches!(status.as_u16(), 301 | 308);
                if all_permanent {
                    permanent = Some(next.clone());
                }
                url = next;
                continue;
            }
            return self.conclude(response, url, permanent).await;
        }
        FetchOutcome::Failed(FetchError {
            permanent_redirect: permanent,
            ..FetchError::new(format!("more than {MAX_REDIRECTS} redirects"))
        })
    }

    async fn conclude(
        &self,
        mut response: reqwest::Response,
        url: Url,
        permanent_redirect: Option<Url>,
    ) -> FetchOutcome {
        let status = response.status();
        if status == StatusCode::NOT_MODIFIED {
            return FetchOutcome::NotModified { permanent_redirect };
        }
        if !status.is_success() {
            let retry_after = if matches!(status.as_u16(), 429 | 503) {
                header_str(response.headers(), header::RETRY_AFTER).and_then(parse_retry_after)
            } else {
                None
            };
            return FetchOutcome::Failed(FetchError {
                status: Some(status.as_u16()),
                message: format!("HTTP {status}"),
                gone: status == StatusCode::GONE,
                retry_after,
                permanent_redirect,
            });
        }
        let headers = response.headers().clone();
        let body = match self.read_body(&mut response).await {
            Ok(body) => body,
            Err(message) => {
                return FetchOutcome::Failed(FetchError {
                    status: Some(status.as_u16()),
                    permanent_redirect,
                    ..FetchError::new(message)
                });
            }
        };
        FetchOutcome::Fetched(Fetched {
            status: status.as_u16(),
            body,
            charset: header_str(&headers, header::CONTENT_TYPE).and_then(charset_of),
            media_type: header_str(&headers, header::CONTENT_TYPE).map(media_type_of),
            validators: Validators {
                etag: header_str(&headers, header::ETAG).map(str::to_owned),
                last_modified: header_str(&headers, header::LAST_MODIFIED).map(str::to_owned),
            },
            final_url: Some(url),
            permanent_redirect,
        })
    }

    /// The decoded body, read in chunks; an error once it passes `max_body`.
    async fn read_body(&self, response: &mut reqwest::Response) -> Result<Vec<u8>, String> {
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| describe_reqwest(&e))? {
            if (body.len() + chunk.len()) as u64 > self.max_body {
                return Err(format!(
                    "body larger than max_body ({} bytes)",
                    self.max_body
                ));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    /// Reads a local feed, with the same size limit.
    pub async fn fetch_file(&self, path: &Path) -> FetchOutcome {
        let read = async {
            let file = tokio::fs::File::open(path).await?;
            let mut body = Vec::new();
            file.take(self.max_body + 1).read_to_end(&mut body).await?;
            Ok::<_, std::io::Error>(body)
        };
        match tokio::time::timeout(self.timeout, read).await {
            Ok(Ok(body)) if body.len() as u64 > self.max_body => {
                FetchOutcome::Failed(FetchError::new(format!(
                    "file larger than max_body ({} bytes)",
                    self.max_body
                )))
            }
            Ok(Ok(body)) => FetchOutcome::Fetched(Fetched {
                status: 200,
                body,
                charset: None,
                media_type: None,
                validators: Validators::default(),
                final_url: None,
                permanent_redirect: None,
            }),
            Ok(Err(e)) => FetchOutcome::Failed(FetchError::new(format!(
                "cannot read {}: {e}",
                path.display()
            ))),
            Err(_) => FetchOutcome::Failed(FetchError::new("timed out reading the file")),
        }
    }
}

fn conditional_headers(v: &Validators) -> HeaderMap {
    let mut headers = HeaderMap::new();
    if let Some(etag) = v
        .etag
        .as_deref()
        .and_then(|e| HeaderValue::from_str(e).ok())
    {
        headers.insert(header::IF_NONE_MATCH, etag);
    }
    if let Some(lm) = v
        .last_modified
        .as_deref()
        .and_then(|l| HeaderValue::from_str(l).ok())
    {
        headers.insert(header::IF_MODIFIED_SINCE, lm);
    }
    headers
}

fn header_str(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// RFC 9110 §10.2.2: `Location` may be relative to the request URL.
fn redirect_target(current: &Url, headers: &HeaderMap) -> Option<Url> {
    let location = header_str(headers, header::LOCATION)?;
    let next = current.join(location).ok()?;
    matches!(next.scheme(), "http" | "https").then_some(next)
}

/// A media type without its parameters, lower-cased (RFC 9110 §8.3.1).
fn media_type_of(content_type: &str) -> String {
    let essence = content_type.split(';').next().unwrap_or("");
    essence.trim().to_ascii_lowercase()
}

/// `charset` parameter of a media type (RFC 9110 §8.3.1), unquoted.
pub fn charset_of(content_type: &str) -> Option<String> {
    content_type
        .split(';')
        .skip(1)
        .find_map(|param| {
            let (name, value) = param.split_once('=')?;
            name.trim()
                .eq_ignore_ascii_case("charset")
                .then(|| value.trim().trim_matches('"').to_owned())
        })
        .filter(|c| !c.is_empty())
}

/// What a `Retry-After` header said (RFC 9110 §10.2.3), kept as said: the
/// poll that got it turns it into a time with its own `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryAfter {
    /// delay-seconds
    Delay(u64),
    /// An HTTP-date, as Unix seconds.
    At(i64),
}

impl RetryAfter {
    /// The Unix time before which the feed must not be asked again; a date
    /// already past means no wait.
    pub fn until(self, now: i64) -> i64 {
        match self {
            RetryAfter::Delay(secs) => now.saturating_add_unsigned(secs),
            RetryAfter::At(t) => t.max(now),
        }
    }
}

/// `Retry-After`: delay-seconds or an HTTP-date.
pub fn parse_retry_after(value: &str) -> Option<RetryAfter> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(RetryAfter::Delay(secs));
    }
    let when = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    Some(RetryAfter::At(when.timestamp()))
}

/// What a fetch's redirects are checked against.
enum Guard {
    /// The user's own URL: a hop may not lead from a public address to a
    /// non-public one.
    Feed,
    /// An article's link, found in the feed at `feed`.
    Page { feed: Option<Url> },
}

impl Guard {
    /// Whether a page's fetch may go to `url`.
    async fn check(&self, url: &Url) -> Result<(), String> {
        let Guard::Page { feed } = self else {
            return Ok(());
        };
        if host_is_link_local(url).await {
            return Err(format!("refused a page on a link-local address ({url})"));
        }
        match feed {
            Some(feed) => check_hop(feed, url).await.map_err(|_| {
                format!("refused a page on a loopback, private or link-local address, linked from a feed on a public one ({url})")
            }),
            None => Ok(()),
        }
    }
}

/// Whether a page's link, found in the feed at `feed` (`None`: a local
/// file), may be fetched at all, robots.txt included (`Fetcher::fetch_page`).
pub async fn page_allowed(url: &Url, feed: Option<&Url>) -> Result<(), String> {
    Guard::Page {
        feed: feed.cloned(),
    }
    .check(url)
    .await
}

/// Whether any address the URL's host stands for is link-local (or
/// unspecified). A name that does not resolve is not: the request fails.
async fn host_is_link_local(url: &Url) -> bool {
    addresses(url)
        .await
        .is_none_or(|a| a.iter().any(|ip| is_link_local(*ip)))
}

/// Link-local (where cloud machines answer with their secrets) or
/// unspecified.
fn is_link_local(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_link_local() || v4.is_unspecified(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_link_local(IpAddr::V4(v4)),
            None => (v6.segments()[0] & 0xffc0) == 0xfe80 || v6.is_unspecified(),
        },
    }
}

/// The resolver of page fetches: the system's, without link-local
/// addresses. A page's name is checked before its fetch (`page_allowed`),
/// but it is resolved again to connect: a name whose owner answers
/// otherwise the second time (DNS rebinding) gets no link-local address
/// this way either.
struct PageResolver;

impl reqwest::dns::Resolve for PageResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found = tokio::net::lookup_host((host.as_str(), 0)).await?;
            let usable: Vec<std::net::SocketAddr> =
                found.filter(|a| !is_link_local(a.ip())).collect();
            if usable.is_empty() {
                return Err(format!("{host} has no address a page may be fetched from").into());
            }
            Ok(Box::new(usable.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// A hop may not lead from a public address to a non-public one.
async fn check_hop(start: &Url, next: &Url) -> Result<(), String> {
    if !host_is_public(start).await {
        return Ok(());
    }
    if host_is_public(next).await {
        Ok(())
    } else {
        Err(format!(
            "refused a redirect from a public address to a loopback, private or link-local one ({next})"
        ))
    }
}

/// Whether every address the URL's host stands for is public. A name that
/// does not resolve counts as public: the request itself will fail.
async fn host_is_public(url: &Url) -> bool {
    addresses(url)
        .await
        .is_some_and(|a| a.iter().all(|ip| is_public(*ip)))
}

/// The addresses the URL's host stands for: its IP literal, or what its
/// name resolves to (none when it does not resolve); `None` without a host.
async fn addresses(url: &Url) -> Option<Vec<IpAddr>> {
    match url.host()? {
        url::Host::Ipv4(ip) => Some(vec![IpAddr::V4(ip)]),
        url::Host::Ipv6(ip) => Some(vec![IpAddr::V6(ip)]),
        url::Host::Domain(name) => {
            let port = url.port_or_known_default().unwrap_or(80);
            Some(match tokio::net::lookup_host((name, port)).await {
                Ok(addrs) => addrs.map(|a| a.ip()).collect(),
                Err(_) => Vec::new(),
            })
        }
    }
}

/// Not loopback, private (RFC 1918, unique local), link-local, unspecified,
/// CGNAT or documentation space.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || (o[0] == 100 && (64..128).contains(&o[1])))
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80)
        }
    }
}

fn describe_reqwest(e: &reqwest::Error) -> String {
    // The innermost cause says what happened (refused, TLS, DNS…).
    let mut cause: &dyn std::error::Error = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else if e.is_body() || e.is_decode() {
        "broken body"
    } else {
        "request failed"
    };
    format!("{kind}: {cause}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charset_parameter() {
        let cases = [
            (
                "application/rss+xml; charset=ISO-8859-1",
                Some("ISO-8859-1"),
            ),
            ("text/xml;charset=\"utf-8\"", Some("utf-8")),
            (
                "text/xml; Charset = windows-1252 ; q=1",
                Some("windows-1252"),
            ),
            ("application/xml", None),
            ("text/xml; charset=", None),
        ];
        for (ct, want) in cases {
            assert_eq!(charset_of(ct).as_deref(), want, "{ct}");
        }
    }

    #[test]
    fn retry_after_is_seconds_or_a_date() {
        let now = chrono::DateTime::parse_from_rfc3339("2015-10-21T07:28:00Z")
            .unwrap()
            .to_utc();
        let cases = [
            ("120", Some(120)),
            (" 0 ", Some(0)),
            ("Wed, 21 Oct 2015 07:30:00 GMT", Some(120)),
            ("Wed, 21 Oct 2015 07:00:00 GMT", Some(0)),
            ("soon", None),
            ("-5", None),
        ];
        for (v, want) in cases {
            assert_eq!(
                parse_retry_after(v).map(|r| r.until(now.timestamp()) - now.timestamp()),
                want,
                "{v}"
            );
        }
    }

    #[test]
    fn public_and_private_addresses() {
        let cases = [
            ("8.8.8.8", true),
            ("2a00:1450::1", true),
            ("127.0.0.1", false),
            ("10.1.2.3", false),
            ("172.16.0.1", false),
            ("192.168.1.1", false),
            ("169.254.169.254", false),
            ("100.64.0.1", false),
            ("0.0.0.0", false),
            ("::1", false),
            ("fd00::1", false),
            ("fe80::1", false),
            ("::ffff:127.0.0.1", false),
            ("::ffff:8.8.8.8", true),
        ];
        for (ip, want) in cases {
            assert_eq!(is_public(ip.parse().unwrap()), want, "{ip}");
        }
    }

    #[tokio::test]
    async fn a_public_origin_may_not_redirect_to_a_private_literal() {
        let public: Url = "https://93.184.216.34/feed".parse().unwrap();
        let private: Url = "http://169.254.169.254/latest/meta-data".parse().unwrap();
        let loopback: Url = "http://127.0.0.1:8080/feed".parse().unwrap();
        assert!(check_hop(&public, &private).await.is_err());
        assert!(check_hop(&public, &loopback).await.is_err());
        assert!(
            check_hop(&public, &"http://[::1]/x".parse().unwrap())
                .await
                .is_err()
        );
        assert!(
            check_hop(&public, &"https://8.8.8.8/x".parse().unwrap())
                .await
                .is_ok()
        );
        assert!(
            check_hop(&loopback, &"http://127.0.0.1:9/x".parse().unwrap())
                .await
                .is_ok()
        );
    }

    #[tokio::test]
    async fn a_page_linked_from_a_public_feed_stays_public() {
        let public_feed: Url = "https://93.184.216.34/rss.xml".parse().unwrap();
        let local_feed: Url = "http://127.0.0.1:8080/rss.xml".parse().unwrap();
        let url = |u: &str| u.parse::<Url>().unwrap();
        let public_page = url("https://8.8.8.8/article");
        let intranet = url("http://10.1.2.3/article");
        let metadata = url("http://169.254.169.254/latest/meta-data/");
        assert!(page_allowed(&public_page, Some(&public_feed)).await.is_ok());
        assert!(page_allowed(&intranet, Some(&public_feed)).await.is_err());
        assert!(
            page_allowed(&url("http://127.0.0.1:9/a"), Some(&public_feed))
                .await
                .is_err()
        );
        // A feed on a private address may link pages there, but no page
        // may be on a link-local address, wherever the feed is.
        assert!(page_allowed(&intranet, Some(&local_feed)).await.is_ok());
        assert!(page_allowed(&intranet, None).await.is_ok());
        for feed in [Some(&public_feed), Some(&local_feed), None] {
            let refused = page_allowed(&metadata, feed).await.unwrap_err();
            assert!(refused.contains("link-local"), "{refused}");
        }
        assert!(
            page_allowed(&url("http://[fe80::1]/a"), None)
                .await
                .is_err()
        );
        assert!(
            page_allowed(&url("http://[::ffff:169.254.1.1]/a"), None)
                .await
                .is_err()
        );
    }

    #[tokio::test]
    async fn the_page_resolver_gives_no_link_local_address() {
        use reqwest::dns::Resolve;
        let name = |n: &str| n.parse::<reqwest::dns::Name>().unwrap();
        let found: Vec<_> = PageResolver
            .resolve(name("localhost"))
            .await
            .unwrap()
            .collect();
        assert!(!found.is_empty());
        assert!(found.iter().all(|a| a.ip().is_loopback()), "{found:?}");
        for ip in [
            "169.254.169.254",
            "0.0.0.0",
            "fe80::1",
            "::ffff:169.254.1.1",
        ] {
            assert!(is_link_local(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["127.0.0.1", "10.0.0.1", "8.8.8.8", "::1"] {
            assert!(!is_link_local(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn relative_locations_resolve() {
        let mut h = HeaderMap::new();
        h.insert(header::LOCATION, HeaderValue::from_static("/new/feed.xml"));
        let base: Url = "https://x.fr/old/feed.xml".parse().unwrap();
        assert_eq!(
            redirect_target(&base, &h).unwrap().as_str(),
            "https://x.fr/new/feed.xml"
        );
        h.insert(header::LOCATION, HeaderValue::from_static("ftp://x.fr/f"));
        assert_eq!(redirect_target(&base, &h), None);
    }
}
