//! `POST /subscribe`: a sign-up from the form (or JSON). Whatever the address (new, waiting for
//! its confirmation, subscribed, gone), the visitor gets the same answer, with the same status,
//! after the same work on the request path: the store records the request, and the mail, if
//! any, is made and sent in the background. Attempts are limited per client, and confirmations
//! per address.

use axum::{
    Json,
    body::Bytes,
    extract::State,
    http::{HeaderMap, header},
    response::{IntoResponse, Response},
};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;
use tracing::warn;

use crate::{
    config::Config,
    domain::{EmailAddress, ListName, MAX_NAME_CHARS, SubscriberName, TextError},
    subscribers::{self, Requested},
    tokens::Claims,
    web::{AppState, error::WebError, limit::ClientIp, mail, views},
};

/// How long a confirmation link works, in days (docs/src/web.md says 7).
pub const CONFIRM_VALID_DAYS: i64 = 7;

/// The fields as sent; every one is checked before use.
#[derive(Debug, Default, Deserialize)]
struct RawSignup {
    #[serde(default)]
    email: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    list: Option<String>,
}

/// A sign-up as the rest of the web takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signup {
    pub email: EmailAddress,
    pub name: Option<SubscriberName>,
    pub list: Option<ListName>,
}

pub async fn submit(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let json = is_json(&headers);
    match accept(&state, client, json, &body).await {
        Ok(()) if json => Json(json!({ "status": "check_inbox", "message": CHECK_INBOX_TEXT })).into_response(),
        Ok(()) => {
            let ctx = state.views.context();
            state.views.render(views::CHECK_INBOX, &ctx).map_err(WebError::from).into_response()
        }
        Err(e) if json => {
            let mut response = (e.status(), Json(json!({ "error": e.problem().detail }))).into_response();
            e.add_headers(&mut response);
            response
        }
        Err(e) => e.into_response(),
    }
}

const CHECK_INBOX_TEXT: &str =
    "Check your inbox: we have sent a link to the address you gave. Open it to confirm your subscription.";

async fn accept(state: &AppState, client: std::net::IpAddr, json: bool, body: &[u8]) -> Result<(), WebError> {
    state.limiter.allow(client, std::time::Instant::now()).map_err(WebError::TooMany)?;
    let raw = if json {
        serde_json::from_slice::<RawSignup>(body)
            .map_err(|_| WebError::BadInput("Send a JSON object with an email.".into()))?
    } else {
        parse_form(body)
    };
    let signup = parse(raw, &state.publication.config)?;
    let now = state.clock.now();
    // Whether a link goes out is not told: the answer is the same for any address.
    if let Requested::Confirm { name } =
        subscribers::request(&state.store, &signup.email, signup.name.as_ref(), now).await?
    {
        let state = state.clone();
        tokio::spawn(async move { send_confirmation(&state, &signup, name.as_deref(), now) });
    }
    Ok(())
}

fn send_confirmation(state: &AppState, signup: &Signup, name: Option<&str>, now: DateTime<Utc>) {
    let claims =
        Claims::confirm(signup.email.clone(), signup.list.clone(), now, chrono::Duration::days(CONFIRM_VALID_DAYS));
    let url = state.publication.link(&format!("confirm/{}", state.publication.signer.sign(&claims)));
    match mail::confirmation(&state.publication, &state.views, &signup.email, name, signup.list.as_ref(), &url, now) {
        Ok(m) => state.postman.post(m),
        Err(e) => warn!(error = %e, "confirmation email not made"),
    }
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
}

fn parse_form(body: &[u8]) -> RawSignup {
    let mut raw = RawSignup::default();
    for (k, v) in url::form_urlencoded::parse(body) {
        match k.as_ref() {
            "email" => raw.email = v.into_owned(),
            "name" => raw.name = Some(v.into_owned()),
            "list" => raw.list = Some(v.into_owned()),
            _ => {}
        }
    }
    raw
}

/// Checks every field: the address, a name on one line, a list a reader may join.
fn parse(raw: RawSignup, config: &Config) -> Result<Signup, WebError> {
    let email: EmailAddress = raw
        .email
        .trim()
        .parse()
        .map_err(|_| WebError::BadInput("That does not look like an email address. Please check it.".into()))?;
    // Judged before the store is asked anything, so a bad name gets the same answer for any
    // address.
    let name = match raw.name.as_deref().map(SubscriberName::parse).transpose() {
        Ok(name) => name.flatten(),
        Err(TextError::TooLong(_)) => {
            return Err(WebError::BadInput(format!("Please keep the name under {MAX_NAME_CHARS} characters.")));
        }
        Err(TextError::Control(_)) => {
            return Err(WebError::BadInput(
                "The name holds a character that cannot be shown. Please retype it.".into(),
            ));
        }
    };
    let list = subscribers::signup_list(config, raw.list.as_deref())?;
    Ok(Signup { email, name, list })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A publication sending to `lists`, none of them kept by a file.
    fn config(lists: &str) -> Config {
        let text = format!(
            "[publication]\nname = \"Notes\"\nfrom = \"Notes <notes@example.org>\"\n\
             base_url = \"https://news.example.org\"\nlists = {lists}\n[[source]]\nfolder = \"articles\"\n"
        );
        Config::parse(&text, std::path::Path::new("gazette.toml"), &Default::default()).expect("config")
    }

    fn open() -> Config {
        config("[\"weekly\", \"daily\"]")
    }

    #[test]
    fn reads_the_form() {
        let raw = parse_form(b"email=ann%40example.org&name=Ann+Lee&list=daily&extra=1");
        let s = parse(raw, &open()).expect("valid");
        assert_eq!(s.email.as_str(), "ann@example.org");
        assert_eq!(s.name.as_deref(), Some("Ann Lee"));
        assert_eq!(s.list.map(|l| l.to_string()).as_deref(), Some("daily"));
    }

    #[test]
    fn folds_a_name_and_refuses_bad_fields() {
        let s = parse(parse_form(b"email=ann@example.org&name=Ann%0D%0ABcc:+x@y&list="), &open()).expect("valid");
        assert_eq!(s.name.as_deref(), Some("Ann Bcc: x@y"));
        assert_eq!(s.list, None);
        assert!(matches!(parse(parse_form(b"email=not-an-address"), &open()), Err(WebError::BadInput(_))));
        assert!(matches!(
            parse(parse_form(b"email=a@example.org%0d%0aBcc:b@example.org"), &open()),
            Err(WebError::BadInput(_))
        ));
        assert!(matches!(parse(parse_form(b"email=a@example.org&list=vip"), &open()), Err(WebError::BadInput(_))));
        assert!(matches!(parse(parse_form(b"email=a@example.org"), &config("[]")), Err(WebError::BadInput(_))));
        let long = format!("email=a@example.org&name={}", "x".repeat(201));
        assert!(matches!(parse(parse_form(long.as_bytes()), &open()), Err(WebError::BadInput(_))));
    }

    #[test]
    fn tells_json_from_a_form() {
        let mut h = HeaderMap::new();
        assert!(!is_json(&h));
        h.insert(header::CONTENT_TYPE, "application/json; charset=utf-8".parse().expect("value"));
        assert!(is_json(&h));
        h.insert(header::CONTENT_TYPE, "application/x-www-form-urlencoded".parse().expect("value"));
        assert!(!is_json(&h));
    }
}
