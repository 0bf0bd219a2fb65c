use std::path::PathBuf;

use rdkafka::ClientConfig;

use super::*;

fn testdata(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/kafka_security/testdata").join(name)
}

fn password_file(dir: &tempfile::TempDir, text: &str) -> PathBuf {
    let path = dir.path().join("password");
    std::fs::write(&path, text).unwrap();
    path
}

fn sasl_ssl(dir: &tempfile::TempDir) -> KafkaSecurityArgs {
    KafkaSecurityArgs {
        protocol: SecurityProtocol::SaslSsl,
        sasl_mechanism: Some(SaslMechanism::ScramSha512),
        sasl_username: Some("lw".into()),
        sasl_password_file: Some(password_file(dir, "s3cret\n")),
        ca_file: Some(testdata("client.crt")),
        ..KafkaSecurityArgs::default()
    }
}

fn property(config: &ClientConfig, key: &str) -> Option<String> {
    config.get(key).map(str::to_owned)
}

#[test]
fn plaintext_is_the_default_and_sets_only_the_protocol() {
    let security = KafkaSecurityArgs::default().load().unwrap();
    assert_eq!(security, KafkaSecurity::default());
    let config = security.client_config("k:9092");
    assert_eq!(property(&config, "security.protocol").as_deref(), Some("PLAINTEXT"));
    assert_eq!(property(&config, "bootstrap.servers").as_deref(), Some("k:9092"));
    assert_eq!(property(&config, "sasl.username"), None);
}

#[test]
fn sasl_ssl_sets_every_librdkafka_property_and_trims_the_password_newline() {
    let dir = tempfile::tempdir().unwrap();
    let security = sasl_ssl(&dir).load().unwrap();
    let config = security.client_config("k:9093");
    assert_eq!(property(&config, "security.protocol").as_deref(), Some("SASL_SSL"));
    assert_eq!(property(&config, "sasl.mechanism").as_deref(), Some("SCRAM-SHA-512"));
    assert_eq!(property(&config, "sasl.username").as_deref(), Some("lw"));
    assert_eq!(property(&config, "sasl.password").as_deref(), Some("s3cret"));
    let ca = testdata("client.crt").to_string_lossy().into_owned();
    assert_eq!(property(&config, "ssl.ca.location"), Some(ca));
    assert!(!format!("{security:?}").contains("s3cret"), "Debug shows no password");
}

#[test]
fn mutual_tls_takes_the_certificate_and_key_files() {
    let args = KafkaSecurityArgs {
        protocol: SecurityProtocol::Ssl,
        cert_file: Some(testdata("client.crt")),
        key_file: Some(testdata("client.key")),
        ..KafkaSecurityArgs::default()
    };
    let security = args.load().unwrap();
    let identity = security.tls.as_ref().unwrap().identity.as_ref().unwrap();
    assert_eq!(identity.chain.len(), 1);
    assert!(identity.key().is_some());
    let config = security.client_config("k:9093");
    assert!(property(&config, "ssl.key.location").unwrap().ends_with("client.key"));
}

#[test]
fn incomplete_or_misplaced_settings_are_refused_with_their_reason() {
    let dir = tempfile::tempdir().unwrap();
    let without = |change: fn(&mut KafkaSecurityArgs)| {
        let mut args = sasl_ssl(&dir);
        change(&mut args);
        args.load().unwrap_err()
    };
    let error = without(|a| a.sasl_mechanism = None);
    assert_eq!(error.reason(), "KafkaSaslIncomplete");
    assert!(error.to_string().contains("--kafka-sasl-mechanism"), "{error}");
    assert_eq!(without(|a| a.sasl_username = Some(" ".into())).reason(), "KafkaSaslIncomplete");
    assert_eq!(without(|a| a.sasl_password_file = None).reason(), "KafkaSaslIncomplete");
    assert_eq!(without(|a| a.protocol = SecurityProtocol::Ssl).reason(), "KafkaSaslNotEnabled");
    let error = without(|a| a.protocol = SecurityProtocol::SaslPlaintext);
    assert_eq!(error.reason(), "KafkaTlsNotEnabled", "a CA file without TLS is a mistake");
    assert_eq!(
        without(|a| a.cert_file = Some(testdata("client.crt"))).reason(),
        "KafkaClientCertIncomplete"
    );
}

#[test]
fn unreadable_empty_and_non_pem_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut args = sasl_ssl(&dir);
    args.sasl_password_file = Some(dir.path().join("missing"));
    let error = args.load().unwrap_err();
    assert_eq!(error.reason(), "KafkaFileUnreadable");
    assert!(error.to_string().contains("missing"), "{error}");

    let mut args = sasl_ssl(&dir);
    args.sasl_password_file = Some(password_file(&dir, "\n"));
    assert_eq!(args.load().unwrap_err().reason(), "KafkaEmptyPassword");

    let mut args = sasl_ssl(&dir);
    let not_pem = dir.path().join("ca.pem");
    std::fs::write(&not_pem, "hello").unwrap();
    args.ca_file = Some(not_pem);
    assert_eq!(args.load().unwrap_err().reason(), "KafkaBadPem");

    let mut args = sasl_ssl(&dir);
    let huge = dir.path().join("huge.pem");
    std::fs::write(&huge, vec![b'a'; 2 * 1024 * 1024]).unwrap();
    args.ca_file = Some(huge);
    assert_eq!(args.load().unwrap_err().reason(), "KafkaFileUnreadable");

    let args = KafkaSecurityArgs {
        protocol: SecurityProtocol::Ssl,
        cert_file: Some(testdata("client.crt")),
        key_file: Some(testdata("client.crt")),
        ..KafkaSecurityArgs::default()
    };
    assert_eq!(args.load().unwrap_err().reason(), "KafkaBadPem", "a certificate is no key");
}

#[test]
fn pass_through_properties_are_set_but_never_security_ones() {
    let args = KafkaSecurityArgs {
        properties: vec!["socket.keepalive.enable=true".into(), " ".into()],
        ..KafkaSecurityArgs::default()
    };
    let config = args.load().unwrap().client_config("k:9092");
    assert_eq!(property(&config, "socket.keepalive.enable").as_deref(), Some("true"));
    for refused in [
        "security.protocol=PLAINTEXT",
        "bootstrap.servers=evil:9092",
        "SASL.password=x",
        "ssl.ca.location=/tmp/x",
        "enable.ssl.certificate.verification=false",
    ] {
        let args = KafkaSecurityArgs { properties: vec![refused.into()], ..Default::default() };
        assert_eq!(args.load().unwrap_err().reason(), "KafkaReservedProperty", "{refused}");
    }
    let args = KafkaSecurityArgs { properties: vec!["novalue".into()], ..Default::default() };
    assert_eq!(args.load().unwrap_err().reason(), "KafkaBadProperty");
}
