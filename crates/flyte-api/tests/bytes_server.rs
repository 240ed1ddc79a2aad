//! gRPC over bytes end to end on loopback: a [`BytesServer`] with a handler that routes by
//! method path, called through a tonic channel with the pass-through codec. Request and
//! answer bytes arrive exactly as sent, fields the bindings do not declare included, and
//! statuses travel as given.

use std::sync::Arc;

use flyte_api::admin::{GetVersionResponse, Version};
use flyte_api::codec::RawCodec;
use flyte_api::server::{BytesServer, Handler};
use flyte_api::{method, Message};
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Channel, Endpoint, Server};
use tonic::{Code, Request, Status};

/// Echoes CreateTask, answers GetVersion, refuses GetTask, serves nothing else.
struct Echo;

impl Handler for Echo {
    async fn call(self: Arc<Self>, method: String, request: Vec<u8>) -> Result<Vec<u8>, Status> {
        match method.as_str() {
            method::CREATE_TASK => Ok(request),
            method::GET_VERSION => {
                let version = Version { build: "echo".into(), ..Default::default() };
                Ok(GetVersionResponse { control_plane_version: Some(version) }.encode_to_vec())
            }
            method::GET_TASK => Err(Status::not_found("no such task")),
            other => Err(Status::unimplemented(format!("{} is not served here", method::name(other)))),
        }
    }
}

async fn serve() -> (Channel, tokio::sync::oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        Server::builder()
            .serve_with_incoming_shutdown(BytesServer::new(Arc::new(Echo)), TcpIncoming::from(listener), async {
                stopped.await.ok();
            })
            .await
            .unwrap();
    });
    let channel = Endpoint::from_shared(format!("http://{address}")).unwrap().connect().await.unwrap();
    (channel, stop)
}

async fn call(channel: &Channel, path: &'static str, request: Vec<u8>) -> Result<Vec<u8>, Status> {
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    grpc.ready().await.unwrap();
    let path = tonic::codegen::http::uri::PathAndQuery::from_static(path);
    grpc.unary(Request::new(request), path, RawCodec).await.map(|r| r.into_inner())
}

#[tokio::test]
async fn bytes_travel_verbatim_and_statuses_as_given() {
    let (channel, stop) = serve().await;

    // A real spec with fields the bindings do not declare, and a trailing unknown field.
    let mut spec = include_bytes!("fixtures/0_training.train.vocabulary_1.pb").to_vec();
    spec.extend([0xfa, 0x06, 3, b'x', b'y', b'z']); // field 111, 3 bytes
    assert_eq!(call(&channel, method::CREATE_TASK, spec.clone()).await.unwrap(), spec);
    assert_eq!(call(&channel, method::CREATE_TASK, Vec::new()).await.unwrap(), Vec::<u8>::new());

    let answer = call(&channel, method::GET_VERSION, Vec::new()).await.unwrap();
    let version = GetVersionResponse::decode(answer.as_slice()).unwrap().control_plane_version.unwrap();
    assert_eq!(version.build, "echo");

    let refused = call(&channel, method::GET_TASK, Vec::new()).await.unwrap_err();
    assert_eq!((refused.code(), refused.message()), (Code::NotFound, "no such task"));
    // Any path reaches the handler, whatever its service.
    for (path, name) in [
        (method::GET_OAUTH2_METADATA, "GetOAuth2Metadata"),
        ("/flyteidl.service.AdminService/CreateExecution", "CreateExecution"),
        ("/no.such.Service/Method", "Method"),
    ] {
        let refused = call(&channel, path, Vec::new()).await.unwrap_err();
        assert_eq!(refused.code(), Code::Unimplemented, "{path}");
        assert_eq!(refused.message(), format!("{name} is not served here"));
    }
    stop.send(()).unwrap();
}
