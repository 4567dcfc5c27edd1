//! Each sample of tests/fixtures/bounces/ read as what it must be (the folder's README says what
//! each is modelled on), then the rules one at a time on messages made here.

use super::*;

macro_rules! sample {
    ($name:literal) => {
        read(include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/bounces/", $name)))
    };
}

/// What a sample must yield.
struct Expect {
    kind: ReportKind,
    recipient: Option<&'static str>,
    status: Option<&'static str>,
    original: Option<&'static str>,
    /// A VERP address it must offer, if any.
    returned_to: Option<&'static str>,
}

fn check(name: &str, r: &Report, e: Expect) {
    assert_eq!(r.kind, e.kind, "{name}: {r:#?}");
    assert_eq!(r.recipients.first().map(EmailAddress::as_str), e.recipient, "{name}: {r:#?}");
    assert_eq!(r.status.as_deref(), e.status, "{name}: {r:#?}");
    assert_eq!(r.original_message_id.as_ref().map(ToString::to_string).as_deref(), e.original, "{name}: {r:#?}");
    if let Some(verp) = e.returned_to {
        assert!(r.returned_to.iter().any(|a| a == verp), "{name}: {verp} not in {:?}", r.returned_to);
    }
}

#[test]
fn a_postfix_dsn_is_hard_with_its_recipient_status_and_original() {
    let r = sample!("postfix-dsn-hard.eml");
    check(
        "postfix",
        &r,
        Expect {
            kind: ReportKind::Hard,
            recipient: Some("ann@example.net"),
            status: Some("5.1.1"),
            original: Some("<issue1.000c92973a50ecb8@example.org>"),
            returned_to: Some("bounces+d7-aaaaaaaaaaaaaaaa@example.org"),
        },
    );
    assert_eq!(r.key, "<20240318130009.4Vb2kQ1Zz9z9sJ@mx.example.org>");
    assert_eq!(r.returned_to[0], "bounces+d7-aaaaaaaaaaaaaaaa@example.org", "Delivered-To comes first");
    assert_eq!(
        r.diagnostic.as_deref(),
        Some("550 5.1.1 <ann@example.net>: Recipient address rejected: User unknown in virtual mailbox table"),
        "unfolded, without its type"
    );
    assert_eq!(r.original_subject.as_deref(), Some("The Weekly Mirror: 16 March 2024"));
}

#[test]
fn dsns_by_action_and_status() {
    check(
        "full",
        &sample!("dsn-mailbox-full.eml"),
        Expect {
            kind: ReportKind::Soft,
            recipient: Some("bob@example.net"),
            status: Some("5.2.2"),
            original: Some("<issue1.5f0e2bb61f0c4a10@example.org>"),
            returned_to: Some("bounces+d8-bbbbbbbbbbbbbbbb@example.org"),
        },
    );
    check(
        "delayed",
        &sample!("dsn-delayed.eml"),
        Expect {
            kind: ReportKind::Soft,
            recipient: Some("cat@example.net"),
            status: Some("4.4.7"),
            original: Some("<issue1.77aa01b2c3d4e5f6@example.org>"),
            returned_to: None,
        },
    );
    let relayed = sample!("dsn-relayed.eml");
    assert_eq!(relayed.kind, ReportKind::Unknown, "nothing failed: {relayed:#?}");
    check(
        "generic",
        &sample!("dsn-generic-status.eml"),
        Expect {
            kind: ReportKind::Soft,
            recipient: Some("eli@example.net"),
            status: Some("5.2.2"),
            original: None,
            returned_to: None,
        },
    );
    check(
        "exchange dsn",
        &sample!("exchange-dsn.eml"),
        Expect {
            kind: ReportKind::Hard,
            recipient: Some("fay@example.net"),
            status: Some("5.1.10"),
            original: Some("<issue1.0f0f0f0f0f0f0f0f@example.org>"),
            returned_to: Some("bounces+d12-ffffffffffffffff@example.org"),
        },
    );
}

#[test]
fn an_arf_abuse_report_is_a_complaint_naming_the_envelope_and_recipient() {
    let r = sample!("arf-abuse.eml");
    check(
        "arf",
        &r,
        Expect {
            kind: ReportKind::Complaint,
            recipient: Some("gil@example.com"),
            status: None,
            original: Some("<issue1.9a9a9a9a9a9a9a9a@example.org>"),
            returned_to: Some("bounces+d13-gggggggggggggggg@example.org"),
        },
    );
    assert_eq!(r.diagnostic.as_deref(), Some("abuse report (ExampleFBL/1.2)"));
}

#[test]
fn free_text_bounces_of_servers_without_dsns() {
    let cases = [
        (
            "qmail",
            sample!("qmail.eml"),
            Expect {
                kind: ReportKind::Hard,
                recipient: Some("hugo@example.net"),
                status: Some("5.1.1"),
                original: Some("<issue1.1234567890abcdef@example.org>"),
                returned_to: Some("bounces+d14-hhhhhhhhhhhhhhhh@example.org"),
            },
        ),
        (
            "exim",
            sample!("exim.eml"),
            Expect {
                kind: ReportKind::Hard,
                recipient: Some("ida@example.net"),
                status: None,
                original: Some("<issue1.aaaabbbbccccdddd@example.org>"),
                returned_to: Some("bounces+d15-iiiiiiiiiiiiiiii@example.org"),
            },
        ),
        (
            "exim delay",
            sample!("exim-delay.eml"),
            Expect {
                kind: ReportKind::Soft,
                recipient: Some("jan@example.net"),
                status: None,
                original: None,
                returned_to: None,
            },
        ),
        (
            "exchange",
            sample!("exchange-ndr.eml"),
            Expect {
                kind: ReportKind::Hard,
                recipient: Some("kim@example.net"),
                status: Some("5.1.1"),
                original: Some("<issue1.feedfacecafebeef@example.org>"),
                returned_to: None,
            },
        ),
        (
            "gmail",
            sample!("gmail.eml"),
            Expect {
                kind: ReportKind::Hard,
                recipient: Some("leo@example.com"),
                status: Some("5.1.1"),
                original: None,
                returned_to: None,
            },
        ),
        (
            "gmail full",
            sample!("gmail-full.eml"),
            Expect {
                kind: ReportKind::Soft,
                recipient: Some("mia@example.com"),
                status: Some("5.2.2"),
                original: None,
                returned_to: None,
            },
        ),
        (
            "yahoo",
            sample!("yahoo.eml"),
            Expect {
                kind: ReportKind::Hard,
                recipient: Some("ned@yahoo.example"),
                status: None,
                original: Some("<issue1.0123456789abcdef@example.org>"),
                returned_to: None,
            },
        ),
    ];
    for (name, report, expect) in cases {
        check(name, &report, expect);
        assert!(report.diagnostic.is_some(), "{name}: the line that says why: {report:#?}");
    }
    assert_eq!(sample!("exim.eml").diagnostic.as_deref(), Some("550 No such user here"));
    assert_eq!(
        sample!("exim-delay.eml").diagnostic.as_deref(),
        Some("host mx.example.net [192.0.2.41]: 451 Temporary local problem - please try later")
    );
}

#[test]
fn autoresponders_and_people_are_no_bounce() {
    let vacation = sample!("vacation.eml");
    assert_eq!(vacation.kind, ReportKind::AutoReply, "{vacation:#?}");
    assert_eq!(
        vacation.original_message_id.map(|m| m.to_string()).as_deref(),
        Some("<issue1.00ff00ff00ff00ff@example.org>"),
        "In-Reply-To names the original"
    );
    assert_eq!(sample!("x-autoreply.eml").kind, ReportKind::AutoReply);
    let human = sample!("human-reply.eml");
    assert_eq!(human.kind, ReportKind::Unknown, "{human:#?}");
    assert!(human.recipients.is_empty());
}

fn mail(headers: &str, body: &str) -> Report {
    read(format!("{headers}\nMessage-ID: <t@example.net>\n\n{body}").as_bytes())
}

#[test]
fn auto_submitted_other_than_no_and_vacation_subjects_are_auto_replies() {
    let from = "From: a@example.net\nTo: weekly@example.org";
    assert_eq!(mail(&format!("{from}\nAuto-Submitted: auto-generated"), "Hello").kind, ReportKind::AutoReply);
    assert_eq!(mail(&format!("{from}\nAuto-Submitted: no"), "Hello").kind, ReportKind::Unknown);
    assert_eq!(mail(&format!("{from}\nPrecedence: auto_reply"), "Hello").kind, ReportKind::AutoReply);
    assert_eq!(mail(&format!("{from}\nSubject: Automatic reply: your mail"), "Hello").kind, ReportKind::AutoReply);
    assert_eq!(mail(&format!("{from}\nSubject: Abwesenheitsnotiz"), "Hallo").kind, ReportKind::AutoReply);
    assert_eq!(mail(&format!("{from}\nSubject: Re: the issue"), "Hello").kind, ReportKind::Unknown);
}

#[test]
fn a_feedback_report_of_another_type_asks_nothing() {
    let arf = String::from_utf8_lossy(include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/bounces/arf-abuse.eml"
    )))
    .replace("Feedback-Type: abuse", "Feedback-Type: not-spam");
    assert_eq!(read(arf.as_bytes()).kind, ReportKind::Unknown);
}

#[test]
fn a_dsn_without_status_goes_by_its_reply_code_else_fails_for_good() {
    let dsn = |recipient_fields: &str| {
        read(
            format!(
                "From: MAILER-DAEMON@mx.example.net\nTo: b@example.org\nMessage-ID: <x@y.example>\n\
                 Content-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\n\n\
                 --B\nContent-Type: text/plain\n\nfailed\n\n\
                 --B\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example.net\n\n{recipient_fields}\n\n--B--\n"
            )
            .as_bytes(),
        )
    };
    let r = dsn("Final-Recipient: rfc822; x@example.net\nAction: failed\nDiagnostic-Code: smtp; 452 too many");
    assert_eq!((r.kind, r.status.as_deref()), (ReportKind::Soft, None));
    let r = dsn("Final-Recipient: rfc822; x@example.net\nAction: failed");
    assert_eq!(r.kind, ReportKind::Hard);
    let r = dsn("Final-Recipient: rfc822; x@example.net\nAction: failed\nStatus: 4.4.1");
    assert_eq!(r.kind, ReportKind::Soft, "a 4.x.x status is soft even when the server gave up");
    let r = dsn("Final-Recipient: rfc822; x@example.net\nAction: failed\nStatus: 5.7.1 (refused)");
    assert_eq!((r.kind, r.status.as_deref()), (ReportKind::Hard, Some("5.7.1")));
    // Two recipients: the failed one is the one reported.
    let r = dsn("Final-Recipient: rfc822; ok@example.net\nAction: delivered\nStatus: 2.0.0\n\n\
         Final-Recipient: rfc822; gone@example.net\nAction: failed\nStatus: 5.1.1");
    assert_eq!(r.recipients.first().map(EmailAddress::as_str), Some("gone@example.net"));
}

#[test]
fn what_is_no_mail_is_unknown_keyed_by_its_bytes() {
    let r = read(b"");
    assert_eq!(r.kind, ReportKind::Unknown);
    assert!(r.key.starts_with("sha256:"), "{}", r.key);
    let a = read(b"From: a@example.net\n\nno id");
    let b = read(b"From: a@example.net\n\nno id, other text");
    assert!(a.key.starts_with("sha256:") && a.key != b.key, "the same message, the same key; another, another");
    assert_eq!(a.key, read(b"From: a@example.net\n\nno id").key);
}

#[test]
fn status_codes_are_not_found_in_versions_and_addresses() {
    assert_eq!(enhanced_status("Exim 4.94.2 said"), None);
    assert_eq!(enhanced_status("host [5.9.12.4] said"), None);
    assert_eq!(enhanced_status("(#5.1.1)"), Some("5.1.1".into()));
    assert_eq!(enhanced_status("status 5.1.1."), Some("5.1.1".into()));
    assert_eq!(enhanced_status("2.0.0 then 4.2.0"), Some("4.2.0".into()));
    assert_eq!(smtp_code("port 465 open"), None);
    assert_eq!(smtp_code("in 2024 and 12:00"), None);
    assert_eq!(smtp_code("554: delivery error"), Some(554));
    assert_eq!(smtp_code("said: 550-5.1.1"), Some(550));
}

#[test]
fn addresses_are_found_in_prose_brackets_and_quotes() {
    let found: Vec<String> = addresses_in("to <ann@example.net>: and 'bob@example.org', mailto:cy@example.com.")
        .into_iter()
        .map(|a| a.to_string())
        .collect();
    assert_eq!(found, ["ann@example.net", "bob@example.org", "cy@example.com"]);
}
