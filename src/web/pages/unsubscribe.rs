//! `/unsubscribe/{token}`: the link at the foot of every issue and in its `List-Unsubscribe`
//! header. A GET shows one button; the POST unsubscribes, whether a reader pressed the button
//! or a mail provider sent RFC 8058's one-click request (`List-Unsubscribe=One-Click`, form
//! encoded or multipart: the body is read as bytes and only the token decides). Pressing twice
//! is harmless, and an address that bounced or complained keeps that status.

use axum::{
    body::Bytes,
    extract::{Path, State},
    response::Html,
};
use tracing::info;

use crate::{
    subscribers::{self, Via},
    tokens::{Claims, Purpose},
    web::{AppState, error::WebError, views},
};

fn claims(state: &AppState, token: &str) -> Result<Claims, WebError> {
    Ok(state.publication.signer.verify(token, Purpose::Unsubscribe, state.clock.now())?)
}

pub async fn page(State(state): State<AppState>, Path(token): Path<String>) -> Result<Html<String>, WebError> {
    let claims = claims(&state, &token)?;
    let mut ctx = state.views.context();
    ctx.insert("email", claims.email.as_str());
    ctx.insert("token", &token);
    Ok(state.views.render(views::UNSUBSCRIBE, &ctx)?)
}

pub async fn unsubscribe(
    State(state): State<AppState>,
    Path(token): Path<String>,
    body: Bytes,
) -> Result<Html<String>, WebError> {
    let claims = claims(&state, &token)?;
    let via = if is_one_click(&body) { Via::OneClick } else { Via::Web };
    if subscribers::unsubscribe(&state.store, &claims.email, via, state.clock.now()).await?.changed {
        info!(source = via.source(), "unsubscribed");
    }
    let mut ctx = state.views.context();
    ctx.insert("email", claims.email.as_str());
    Ok(state.views.render(views::UNSUBSCRIBED, &ctx)?)
}

/// Whether a body is RFC 8058's one-click request, form encoded (`List-Unsubscribe=One-Click`)
/// or multipart (a `List-Unsubscribe` part holding `One-Click`). Only for the consent record:
/// the token alone decides.
pub fn is_one_click(body: &[u8]) -> bool {
    if url::form_urlencoded::parse(body).any(|(k, v)| k == "List-Unsubscribe" && v.trim() == "One-Click") {
        return true;
    }
    let text = String::from_utf8_lossy(body);
    let mut lines = text.split("\r\n").flat_map(|l| l.split('\n'));
    while let Some(line) = lines.next() {
        let l = line.to_ascii_lowercase();
        if l.starts_with("content-disposition:") && l.contains("name=\"list-unsubscribe\"") {
            // The part's headers end at an empty line; its value follows.
            for rest in lines.by_ref() {
                if rest.trim().is_empty() {
                    break;
                }
            }
            return lines.next().is_some_and(|v| v.trim() == "One-Click");
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_both_forms_of_the_one_click_body() {
        assert!(is_one_click(b"List-Unsubscribe=One-Click"));
        assert!(is_one_click(b"List-Unsubscribe=One-Click&other=1"));
        let multipart =
            b"--XyZ\r\nContent-Disposition: form-data; name=\"List-Unsubscribe\"\r\n\r\nOne-Click\r\n--XyZ--\r\n";
        assert!(is_one_click(multipart));
        let with_type = b"--b\r\nContent-Disposition: form-data; name=\"List-Unsubscribe\"\r\nContent-Type: text/plain\r\n\r\nOne-Click\r\n--b--\r\n";
        assert!(is_one_click(with_type));
        assert!(!is_one_click(b""));
        assert!(!is_one_click(b"List-Unsubscribe=Something-Else"));
        assert!(!is_one_click(b"--b\r\nContent-Disposition: form-data; name=\"other\"\r\n\r\nOne-Click\r\n--b--\r\n"));
        assert!(!is_one_click(&[0xff, 0xfe, 0x00]));
    }
}
