//! Serving Flyte's gRPC services over bytes: every unary call, whatever its service, goes
//! with its method path and request bytes to one [`Handler`], whose answer bytes are sent as
//! they are (the pass-through [`RawCodec`]). No generated server code and no router: the
//! handler routes by path (the [`crate::method`] constants) and decodes what it reads with
//! the messages of this crate. `tonic::transport::Server::serve_with_incoming*` serves a
//! [`BytesServer`] as the whole server.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll};

use tonic::body::Body;
use tonic::codegen::{http, BoxFuture, Service};
use tonic::server::{Grpc, UnaryService};
use tonic::{Request, Response, Status};

use crate::codec::RawCodec;

/// Answers unary calls over bytes.
pub trait Handler: Send + Sync + 'static {
    /// One call: `method` is the whole path (`/flyteidl.service.AdminService/CreateTask`),
    /// `request` the request message's bytes; the answer is the response message's bytes, or
    /// the status to fail with (UNIMPLEMENTED for a method the handler does not serve).
    fn call(
        self: Arc<Self>,
        method: String,
        request: Vec<u8>,
    ) -> impl Future<Output = Result<Vec<u8>, Status>> + Send + 'static;
}

/// Every gRPC call answered by handler `H`.
pub struct BytesServer<H> {
    handler: Arc<H>,
}

impl<H> BytesServer<H> {
    pub fn new(handler: Arc<H>) -> BytesServer<H> {
        BytesServer { handler }
    }
}

impl<H> Clone for BytesServer<H> {
    fn clone(&self) -> Self {
        BytesServer { handler: self.handler.clone() }
    }
}

impl<H: Handler> Service<http::Request<Body>> for BytesServer<H> {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let call = Call { handler: self.handler.clone(), method: request.uri().path().to_string() };
        Box::pin(async move { Ok(Grpc::new(RawCodec).unary(call, request).await) })
    }
}

/// One call on its way to the handler.
struct Call<H> {
    handler: Arc<H>,
    method: String,
}

impl<H: Handler> UnaryService<Vec<u8>> for Call<H> {
    type Response = Vec<u8>;
    type Future = BoxFuture<Response<Vec<u8>>, Status>;

    fn call(&mut self, request: Request<Vec<u8>>) -> Self::Future {
        let answer = self.handler.clone().call(std::mem::take(&mut self.method), request.into_inner());
        Box::pin(async move { answer.await.map(Response::new) })
    }
}
