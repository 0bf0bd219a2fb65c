//! `serve::auth` end to end: tokens signed with HS256, RSA and EC keys, JWKS files and a
//! JWKS served over HTTP that rotates, the axum extractors' answers, and the `token`
//! command's output. Keys are the test-only fixtures under tests/fixtures/jwt.

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::State;
use axum::http::{Request, StatusCode, header};
use axum::routing::get;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode, get_current_timestamp};
use licenseware_worker::serve::auth::{AuthSettings, Authenticator, Caller, MachineCaller};
use serde_json::{Value, json};
use tower::ServiceExt;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/jwt").join(name)
}

fn read(name: &str) -> Vec<u8> {
    std::fs::read(fixture(name)).expect("fixture")
}

fn rsa(name: &str) -> EncodingKey {
    EncodingKey::from_rsa_pem(&read(&format!("{name}.key.pem"))).expect("RSA private key")
}

fn ec(name: &str) -> EncodingKey {
    EncodingKey::from_ec_pem(&read(&format!("{name}.key.pem"))).expect("EC private key")
}

fn claims(tenants: &[&str]) -> Value {
    json!({"sub": "user-1", "tenants": tenants, "exp": get_current_timestamp() + 600})
}

fn sign(alg: Algorithm, key: &EncodingKey, kid: Option<&str>, claims: &Value) -> String {
    let header = Header { kid: kid.map(str::to_owned), ..Header::new(alg) };
    encode(&header, claims, key).expect("sign")
}

async fn authenticator(settings: AuthSettings) -> Authenticator {
    Authenticator::from_settings(&settings).await.expect("authenticator")
}

fn pem_settings(files: &[&str]) -> AuthSettings {
    AuthSettings {
        public_key_files: files.iter().map(|f| fixture(f)).collect(),
        ..Default::default()
    }
}

/// A request's answer: status, JSON body, and whether it challenges for a Bearer token.
async fn call(app: &Router, headers: &[(&str, &str)], path: &str) -> (StatusCode, Value, bool) {
    let mut request = Request::get(path);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response =
        app.clone().oneshot(request.body(Body::empty()).expect("request")).await.expect("answer");
    let status = response.status();
    let challenged = response.headers().contains_key(header::WWW_AUTHENTICATE);
    let bytes = to_bytes(response.into_body(), 64 * 1024).await.expect("body");
    (status, serde_json::from_slice(&bytes).expect("json"), challenged)
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// Two routes as `serve` declares them: the handlers only name the extractor.
fn app(auth: Authenticator) -> Router {
    async fn me(caller: Caller) -> axum::Json<Value> {
        axum::Json(json!({
            "tenant": caller.tenant.as_ref().map(ToString::to_string),
            "sub": caller.subject,
            "unlimited": caller.unlimited(),
            "machine": caller.machine,
        }))
    }
    async fn machine(MachineCaller(caller): MachineCaller) -> axum::Json<Value> {
        axum::Json(
            json!({"tenant": caller.tenant.as_ref().map(ToString::to_string), "sub": caller.subject}),
        )
    }
    Router::new().route("/me", get(me)).route("/machine", get(machine)).with_state(auth)
}

#[tokio::test]
async fn rsa_and_ec_pem_keys_verify_their_own_tokens_only() {
    let auth = authenticator(pem_settings(&["rsa1.pub.pem", "ec1.pub.pem"])).await;
    let app = app(auth);
    let c = claims(&["t1"]);
    for token in [
        sign(Algorithm::RS256, &rsa("rsa1"), None, &c),
        sign(Algorithm::ES256, &ec("ec1"), None, &c),
    ] {
        let (status, body, _) =
            call(&app, &[("TenantId", "t1"), ("Authorization", &bearer(&token))], "/me").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(
            body,
            json!({"tenant": "t1", "sub": "user-1", "unlimited": false, "machine": false})
        );
    }
    for token in [
        sign(Algorithm::RS256, &rsa("rsa2"), None, &c),
        sign(Algorithm::ES256, &ec("ec2"), None, &c),
    ] {
        let (status, body, challenged) =
            call(&app, &[("TenantId", "t1"), ("Authorization", &bearer(&token))], "/me").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(body["reason"], "BadSignature");
        assert!(challenged);
    }
}

#[tokio::test]
async fn hs256_signed_with_the_public_key_is_refused() {
    let auth = authenticator(pem_settings(&["rsa1.pub.pem"])).await;
    // The classic confusion: the public key's PEM bytes used as an HMAC secret.
    let forged = EncodingKey::from_secret(&read("rsa1.pub.pem")).expect("hmac key");
    let token = sign(Algorithm::HS256, &forged, None, &claims(&["t1"]));
    let (status, body, _) =
        call(&app(auth), &[("TenantId", "t1"), ("Authorization", &bearer(&token))], "/me").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        body,
        json!({
            "status": "fail",
            "message": "Missing Tenant or Authorization information",
            "reason": "AlgorithmNotAllowed",
        })
    );
}

#[tokio::test]
async fn alg_none_is_refused() {
    use base64::Engine;
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let auth = authenticator(pem_settings(&["rsa1.pub.pem"])).await;
    let payload = serde_json::to_vec(&claims(&["t1"])).expect("claims");
    for alg in ["none", "None", "NONE"] {
        let header = format!(r#"{{"alg":"{alg}","typ":"JWT"}}"#);
        let token = format!("{}.{}.", b64(header.as_bytes()), b64(&payload));
        let (status, body, _) = call(
            &app(auth.clone()),
            &[("TenantId", "t1"), ("Authorization", &bearer(&token))],
            "/me",
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{alg}");
        assert_eq!(body["reason"], "MalformedToken", "{alg}");
    }
}

#[tokio::test]
async fn an_expired_token_is_a_401() {
    let auth = authenticator(pem_settings(&["ec1.pub.pem"])).await;
    let mut c = claims(&["t1"]);
    c["exp"] = json!(get_current_timestamp() - 120);
    let token = sign(Algorithm::ES256, &ec("ec1"), None, &c);
    let (status, body, _) =
        call(&app(auth), &[("TenantId", "t1"), ("Authorization", &bearer(&token))], "/me").await;
    assert_eq!((status, &body["reason"]), (StatusCode::UNAUTHORIZED, &json!("TokenExpired")));
}

#[tokio::test]
async fn refusals_answer_with_the_sdk_statuses_and_bodies() {
    let auth = authenticator(pem_settings(&["rsa1.pub.pem"])).await;
    let app = app(auth);
    let token = sign(Algorithm::RS256, &rsa("rsa1"), None, &claims(&["t1"]));
    let auth_header = bearer(&token);
    let body = |message: &str, reason: &str| json!({"status": "fail", "message": message, "reason": reason});
    let missing = "Missing Tenant or Authorization information";
    type Headers<'a> = &'a [(&'a str, &'a str)];
    let cases: [(Headers, StatusCode, Value); 5] = [
        (&[("Authorization", &auth_header)], StatusCode::FORBIDDEN, body(missing, "MissingTenant")),
        (&[("TenantId", "t1")], StatusCode::FORBIDDEN, body(missing, "MissingToken")),
        (
            &[("TenantId", "t 1"), ("Authorization", &auth_header)],
            StatusCode::BAD_REQUEST,
            body("Invalid tenant id", "InvalidTenant"),
        ),
        (
            &[("TenantId", "t2"), ("Authorization", &auth_header)],
            StatusCode::FORBIDDEN,
            body("Tenant not allowed for this token", "TenantNotAllowed"),
        ),
        (
            &[("tenant_id", "t1"), ("auth_jwt", "x.y.z")],
            StatusCode::UNAUTHORIZED,
            body(missing, "MalformedToken"),
        ),
    ];
    for (headers, status, want) in cases {
        let (got_status, got_body, _) = call(&app, headers, "/me").await;
        assert_eq!((got_status, &got_body), (status, &want), "{headers:?}");
    }
    let (status, ok, _) = call(&app, &[("tenant_id", "t1"), ("auth_jwt", &token)], "/me").await;
    assert_eq!(status, StatusCode::OK, "legacy headers: {ok}");
}

#[tokio::test]
async fn machine_routes_take_machine_tokens_with_or_without_a_tenant() {
    let auth = authenticator(pem_settings(&["rsa1.pub.pem"])).await;
    let app = app(auth);
    let user = sign(Algorithm::RS256, &rsa("rsa1"), None, &claims(&["t1"]));
    let (status, body, _) =
        call(&app, &[("TenantId", "t1"), ("Authorization", &bearer(&user))], "/machine").await;
    assert_eq!((status, &body["reason"]), (StatusCode::FORBIDDEN, &json!("MachineRoleRequired")));
    let mut c = claims(&[]);
    c["roles"] = json!(["machine"]);
    let machine = sign(Algorithm::RS256, &rsa("rsa1"), None, &c);
    let (status, body, _) = call(&app, &[("Authorization", &bearer(&machine))], "/machine").await;
    assert_eq!((status, body), (StatusCode::OK, json!({"tenant": null, "sub": "user-1"})));
    let (status, body, _) =
        call(&app, &[("TenantId", "t7"), ("Authorization", &bearer(&machine))], "/me").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["machine"], true);
}

fn jwk(key: &EncodingKey, alg: Algorithm, kid: &str) -> Jwk {
    let mut jwk = Jwk::from_encoding_key(key, alg).expect("jwk");
    jwk.common.key_id = Some(kid.to_owned());
    jwk
}

#[tokio::test]
async fn a_jwks_file_picks_the_key_by_kid() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("jwks.json");
    let set = JwkSet {
        keys: vec![
            jwk(&rsa("rsa1"), Algorithm::RS256, "k1"),
            jwk(&rsa("rsa2"), Algorithm::RS256, "k2"),
        ],
    };
    std::fs::write(&path, serde_json::to_vec(&set).expect("json")).expect("write");
    let auth = authenticator(AuthSettings { jwks_file: Some(path), ..Default::default() }).await;
    let app = app(auth);
    let c = claims(&["t1"]);
    let cases = [
        ("rsa1", Some("k1"), StatusCode::OK, None),
        ("rsa2", Some("k2"), StatusCode::OK, None),
        ("rsa1", None, StatusCode::OK, None),
        ("rsa1", Some("k2"), StatusCode::UNAUTHORIZED, Some("BadSignature")),
        ("rsa1", Some("k3"), StatusCode::UNAUTHORIZED, Some("UnknownKey")),
    ];
    for (key, kid, status, reason) in cases {
        let token = sign(Algorithm::RS256, &rsa(key), kid, &c);
        let (got, body, _) =
            call(&app, &[("TenantId", "t1"), ("Authorization", &bearer(&token))], "/me").await;
        assert_eq!(got, status, "{key} {kid:?}: {body}");
        assert_eq!(body.get("reason").and_then(Value::as_str), reason, "{key} {kid:?}");
    }
}

/// A JWKS endpoint on 127.0.0.1 whose set the test replaces, counting its fetches.
struct Issuer {
    set: Mutex<JwkSet>,
    fetches: AtomicUsize,
}

async fn serve_issuer(set: JwkSet) -> (Arc<Issuer>, String) {
    async fn jwks(State(issuer): State<Arc<Issuer>>) -> axum::Json<JwkSet> {
        issuer.fetches.fetch_add(1, Ordering::SeqCst);
        axum::Json(issuer.set.lock().expect("set").clone())
    }
    let issuer = Arc::new(Issuer { set: Mutex::new(set), fetches: AtomicUsize::new(0) });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/jwks", listener.local_addr().expect("addr"));
    let router = Router::new().route("/jwks", get(jwks)).with_state(issuer.clone());
    tokio::spawn(async move { axum::serve(listener, router).await });
    (issuer, url)
}

#[tokio::test]
async fn a_rotated_key_brings_exactly_one_refetch() {
    let (issuer, url) =
        serve_issuer(JwkSet { keys: vec![jwk(&rsa("rsa1"), Algorithm::RS256, "k1")] }).await;
    let auth = authenticator(AuthSettings { jwks_url: Some(url), ..Default::default() }).await;
    let app = app(auth);
    assert_eq!(issuer.fetches.load(Ordering::SeqCst), 1, "fetched at startup");
    let c = claims(&["t1"]);
    let request = |token: String| {
        let app = app.clone();
        async move { call(&app, &[("TenantId", "t1"), ("Authorization", &bearer(&token))], "/me").await }
    };

    let (status, _, _) = request(sign(Algorithm::RS256, &rsa("rsa1"), Some("k1"), &c)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(issuer.fetches.load(Ordering::SeqCst), 1, "a known kid fetches nothing");

    // The issuer rotates to a second key; several requests with it arrive at once.
    issuer.set.lock().expect("set").keys.push(jwk(&ec("ec1"), Algorithm::ES256, "k2"));
    let new = sign(Algorithm::ES256, &ec("ec1"), Some("k2"), &c);
    let answers = futures::future::join_all((0..8).map(|_| request(new.clone()))).await;
    for (status, body, _) in answers {
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    assert_eq!(issuer.fetches.load(Ordering::SeqCst), 2, "one refetch for the new kid");

    // Made-up kids within 30 s of that refetch fetch nothing, even when the issuer has
    // meanwhile published them.
    issuer.set.lock().expect("set").keys.push(jwk(&rsa("rsa2"), Algorithm::RS256, "k3"));
    for kid in ["k3", "bogus-1", "bogus-2"] {
        let (status, body, _) = request(sign(Algorithm::RS256, &rsa("rsa2"), Some(kid), &c)).await;
        assert_eq!(
            (status, &body["reason"]),
            (StatusCode::UNAUTHORIZED, &json!("UnknownKey")),
            "{kid}"
        );
    }
    assert_eq!(issuer.fetches.load(Ordering::SeqCst), 2, "throttled");
}

#[tokio::test]
async fn an_issuer_down_at_startup_is_a_503_not_a_crash() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let settings = AuthSettings {
        jwks_url: Some(format!("http://127.0.0.1:{port}/jwks")),
        ..Default::default()
    };
    let auth = authenticator(settings).await;
    let token = sign(Algorithm::RS256, &rsa("rsa1"), Some("k1"), &claims(&["t1"]));
    let (status, body, _) =
        call(&app(auth), &[("TenantId", "t1"), ("Authorization", &bearer(&token))], "/me").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        body,
        json!({"status": "fail", "message": "Authentication keys unavailable", "reason": "KeysUnavailable"})
    );
}

fn mint_with_cli(secret: &std::path::Path, args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_licenseware-worker"))
        .arg("token")
        .arg("--secret-file")
        .arg(secret)
        .args(args)
        .output()
        .expect("run the worker");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8(output.stdout).expect("utf-8");
    assert_eq!(stdout.lines().count(), 1, "one line: {stdout:?}");
    stdout.trim_end().to_owned()
}

#[tokio::test]
async fn the_token_command_mints_what_serve_accepts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let secret = dir.path().join("secret");
    std::fs::write(&secret, "a-development-secret\n").expect("write");
    let auth = authenticator(AuthSettings {
        hs256_secret_file: Some(secret.clone()),
        ..Default::default()
    })
    .await;
    let app = app(auth);

    let user = mint_with_cli(
        &secret,
        &["--tenant", "t1", "--tenant", "t2", "--sub", "u9", "--plan", "unlimited", "--ttl", "15m"],
    );
    let (status, body, _) =
        call(&app, &[("TenantId", "t2"), ("Authorization", &bearer(&user))], "/me").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({"tenant": "t2", "sub": "u9", "unlimited": true, "machine": false}));
    let (status, _, _) =
        call(&app, &[("TenantId", "t3"), ("Authorization", &bearer(&user))], "/me").await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let machine = mint_with_cli(&secret, &["--machine"]);
    let (status, body, _) = call(&app, &[("Authorization", &bearer(&machine))], "/machine").await;
    assert_eq!((status, body), (StatusCode::OK, json!({"tenant": null, "sub": "dev"})));

    // The secret's trailing newline is dropped on both sides: without it, the same key.
    std::fs::write(&secret, "a-development-secret").expect("write");
    let again = mint_with_cli(&secret, &["--tenant", "t1"]);
    let (status, _, _) =
        call(&app, &[("TenantId", "t1"), ("Authorization", &bearer(&again))], "/me").await;
    assert_eq!(status, StatusCode::OK);
}

#[test]
fn the_token_command_refuses_a_bad_tenant() {
    let output = Command::new(env!("CARGO_BIN_EXE_licenseware-worker"))
        .args(["token", "--secret-file"])
        .arg(fixture("rsa1.pub.pem"))
        .args(["--tenant", "../etc"])
        .output()
        .expect("run the worker");
    assert_eq!(output.status.code(), Some(2));
    assert!(output.stdout.is_empty());
}
