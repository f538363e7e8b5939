//! Clusters behind TLS, end to end: a real migration whose source is reached over one-way TLS
//! and whose target requires a client certificate (two-way TLS), with a CA the test made;
//! then every way a TLS connection goes wrong, each a clear preflight error that names the
//! side, the host and what failed. The TLS endpoints are `scripts/grpc_proxy.py` (a test tool
//! that terminates TLS in front of the real servers), started by `scripts/test.sh`.

mod common;

use common::*;
use vecmigrate::domain::{JobStatus, Phase, TlsSpec};
use vecmigrate::engine::EngineConfig;

#[tokio::test]
async fn a_migration_over_one_way_and_two_way_tls_copies_every_row() {
    // GIVEN a seeded source, reached through a TLS proxy whose certificate only the test CA
    // signed, and a target that also requires a client certificate
    let h = harness(fast_settings(), EngineConfig::default(), None);
    let tls = TlsServers::from_env();
    let s = Seed {
        partitions: vec!["p1".into()],
        ..Seed::new(&unique("over_tls"), 3_000)
    };
    seed(&h.servers.source, "default", &s).await;
    let mut req = request(&h.servers, None, &[(&s.name, &s.name)]);
    req.options.batch_size = 500;
    req.source.uri = format!("https://localhost:{}", tls.source_port);
    req.source.tls = Some(TlsSpec {
        ca_cert: Some(tls.pem("ca.pem")),
        ..Default::default()
    });
    req.target.uri = format!("https://localhost:{}", tls.target_port);
    req.target.tls = Some(TlsSpec {
        ca_cert_file: Some(tls.file("ca.pem")),
        client_cert_file: Some(tls.file("client.pem")),
        client_key_file: Some(tls.file("client.key")),
        ..Default::default()
    });

    // WHEN it runs
    let (job, report) = h.run(req).await;

    // THEN every row arrived, compared row by row through the servers' plaintext ports
    assert_successful(&report);
    assert_same_rows(&h.servers, &s, "default", &s.name).await;
    // and the job record keeps where the key is, not the key
    let stored = serde_json::to_string(&h.store.get_job(&job.id).await.unwrap().unwrap()).unwrap();
    assert!(!stored.contains("PRIVATE KEY"), "{stored}");
    assert!(stored.contains("client.key"), "{stored}");
}

/// One way a TLS connection goes wrong, and the words its error must carry.
struct Case {
    what: &'static str,
    side: &'static str,
    uri: String,
    tls: Option<TlsSpec>,
    words: &'static [&'static str],
}

#[tokio::test]
async fn tls_mistakes_are_clear_preflight_errors_and_write_nothing() {
    let h = harness(fast_settings(), EngineConfig::default(), None);
    let tls = TlsServers::from_env();
    let s = Seed::new(&unique("tls_errors"), 10);
    seed(&h.servers.source, "default", &s).await;
    let ca = |name: &str| {
        Some(TlsSpec {
            ca_cert_file: Some(tls.file(name)),
            ..Default::default()
        })
    };
    let plain_port = h.servers.source.uri.rsplit(':').next().unwrap().to_owned();
    let cases = [
        Case {
            what: "a CA that did not sign the server's certificate",
            side: "source",
            uri: format!("https://localhost:{}", tls.source_port),
            tls: ca("other-ca.pem"),
            words: &["unknown issuer", "source.tls.ca_cert"],
        },
        Case {
            what: "no CA: the platform's roots do not know the test CA",
            side: "source",
            uri: format!("https://localhost:{}", tls.source_port),
            tls: None,
            words: &["unknown issuer"],
        },
        Case {
            what: "a host the certificate does not name",
            side: "source",
            uri: format!("https://127.0.0.1:{}", tls.source_port),
            tls: ca("ca.pem"),
            words: &[
                "not valid for this host name",
                "localhost",
                "source.tls.server_name",
            ],
        },
        Case {
            what: "an expired certificate",
            side: "source",
            uri: format!("https://localhost:{}", tls.expired_port),
            tls: ca("ca.pem"),
            words: &["expired"],
        },
        Case {
            what: "plaintext to a TLS port",
            side: "source",
            uri: format!("http://localhost:{}", tls.source_port),
            tls: None,
            words: &["speaks TLS", "https://"],
        },
        Case {
            what: "TLS to a plaintext port",
            side: "source",
            uri: format!("https://localhost:{plain_port}"),
            tls: ca("ca.pem"),
            words: &["does not speak TLS", "http://"],
        },
        Case {
            what: "two-way TLS without a client certificate",
            side: "target",
            uri: format!("https://localhost:{}", tls.target_port),
            tls: ca("ca.pem"),
            words: &["two-way TLS", "target.tls.client_cert"],
        },
        Case {
            what: "two-way TLS with a certificate the server does not accept",
            side: "target",
            uri: format!("https://localhost:{}", tls.target_port),
            tls: Some(TlsSpec {
                ca_cert_file: Some(tls.file("ca.pem")),
                client_cert_file: Some(tls.file("expired.pem")),
                client_key_file: Some(tls.file("expired.key")),
                ..Default::default()
            }),
            words: &["refused the client certificate"],
        },
    ];
    for case in cases {
        // GIVEN a request with one TLS mistake
        let target_name = unique("never_written");
        let mut req = request(&h.servers, None, &[(&s.name, &target_name)]);
        let spec = if case.side == "source" {
            &mut req.source
        } else {
            &mut req.target
        };
        spec.uri = case.uri.clone();
        spec.tls = case.tls;
        // WHEN it runs
        let (_, report) = h.run(req).await;
        // THEN it fails in preflight, naming the side, the host and port, and what to do
        assert_eq!(report.job.status, JobStatus::Failed, "{}", case.what);
        let error = report.job.error.expect("an error");
        assert_eq!(error.phase, Some(Phase::Preflight), "{}", case.what);
        let authority = case.uri.split("://").nth(1).unwrap();
        let expected = format!("TLS with the {} cluster at {authority} failed", case.side);
        assert!(
            error.message.contains(&expected),
            "{}: {}",
            case.what,
            error.message
        );
        for w in case.words {
            assert!(
                error.message.contains(w),
                "{}: {}",
                case.what,
                error.message
            );
        }
        // and nothing was created on the target
        assert!(
            !collection_names(&h.servers.target, "default")
                .await
                .contains(&target_name),
            "{}: the target collection was created",
            case.what
        );
    }
}
