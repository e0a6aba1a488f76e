//! The demos' `PORT`: the port they listen on, and a message naming the fix when it is taken.

use super::login::support;

#[tokio::test]
async fn a_taken_port_is_a_message_naming_the_fix() {
    let taken = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = taken.local_addr().unwrap().port();
    let message = support::listen("login", Some(port.to_string()))
        .await
        .expect_err("the port is taken");
    assert!(
        message.starts_with(&format!("login: cannot listen on 127.0.0.1:{port} (")),
        "{message}"
    );
    assert!(
        message.contains("run with PORT set to a free port, e.g. PORT="),
        "{message}"
    );
    assert!(message.ends_with("cargo run --example login"), "{message}");
}

#[tokio::test]
async fn a_malformed_port_is_a_message() {
    let message = support::listen("counter", Some("eighty".into()))
        .await
        .expect_err("not a number");
    assert_eq!(
        message,
        "counter: PORT=\"eighty\" is not a port number (0 to 65535)"
    );
}

#[tokio::test]
async fn the_port_given_is_the_port_listened_on() {
    let free = crate::common::free_port();
    let listener = support::listen("counter", Some(free.to_string()))
        .await
        .expect("a free port");
    assert_eq!(listener.local_addr().unwrap().port(), free);
}
