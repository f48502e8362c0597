//! The admission server's HTTP service. The two review routes, which carry all the load, are
//! answered here directly: the body read up to `MAX_BODY` within `REQUEST_TIMEOUT`, its bytes
//! counted against `MAX_BODY_BYTES_IN_FLIGHT` as they arrive, then `review::handle`. Everything
//! else (health, readiness, metrics, wrong methods, unknown paths) goes through axum's [`Router`].
//! Between hyper and the handler, axum's routing, extractors and three tower layers were about
//! 6 % of the server's CPU per review (perf under scripts/bench-webhook), as much as the rest of
//! the review's HTTP work.

use std::{
    convert::Infallible,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use axum::{
    BoxError, Router,
    body::{Bytes, HttpBody},
    http::{Method, Request, StatusCode},
    response::{IntoResponse, Response},
};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tower::ServiceExt;

use crate::{AppState, MAX_BODY, MAX_BODY_BYTES_IN_FLIGHT, review, server::REQUEST_TIMEOUT};

/// The whole HTTP surface (see the module's doc). Cloned per connection.
#[derive(Clone)]
pub struct Admission {
    state: AppState,
    router: Router,
    /// One permit per body byte held (`MAX_BODY_BYTES_IN_FLIGHT`).
    body_bytes: Arc<Semaphore>,
}

impl Admission {
    /// Reviews for `state`, and `router` for the other routes.
    pub fn new(state: AppState, router: Router) -> Self {
        Self { state, router, body_bytes: Arc::new(Semaphore::new(MAX_BODY_BYTES_IN_FLIGHT)) }
    }
}

impl<B> tower::Service<Request<B>> for Admission
where
    B: HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let mode = match (req.method(), req.uri().path()) {
            (&Method::POST, "/mutate") => review::Mode::Mutate,
            (&Method::POST, "/validate") => review::Mode::Validate,
            _ => {
                let router = self.router.clone();
                return Box::pin(router.oneshot(req));
            }
        };
        let (state, budget) = (self.state.clone(), self.body_bytes.clone());
        Box::pin(async move {
            // A client trickling its body is cut off when the request's time is up (the API
            // server gives a webhook at most 30 s; examples/webhook/webhooks.yaml gives it 5 s).
            let answer = tokio::time::timeout(REQUEST_TIMEOUT, async {
                match read_body(req.into_body(), &budget).await {
                    Ok((body, _held)) => review::handle(&state, mode, &body),
                    Err(response) => response,
                }
            });
            Ok(answer.await.unwrap_or_else(|_| StatusCode::REQUEST_TIMEOUT.into_response()))
        })
    }
}

/// Reads a review's body, taking one permit of `budget` per byte as the bytes arrive; the permits
/// go back when the caller drops them, after the review. The budget bounds the memory every body
/// being read holds together; the bytes are counted, not the requests, so slow or stalled senders
/// hold only what they sent, and a review of a few kB is not kept waiting behind them.
async fn read_body<B>(body: B, budget: &Arc<Semaphore>) -> Result<(Bytes, Option<OwnedSemaphorePermit>), Response>
where
    B: HttpBody<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    let mut body = std::pin::pin!(Limited::new(body, MAX_BODY));
    let mut chunks: Vec<Bytes> = Vec::new();
    let mut held: Option<OwnedSemaphorePermit> = None;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            if e.is::<LengthLimitError>() {
                let limit = format!("the AdmissionReview is larger than {} MiB", MAX_BODY >> 20);
                (StatusCode::PAYLOAD_TOO_LARGE, limit).into_response()
            } else {
                (StatusCode::BAD_REQUEST, format!("cannot read the body: {e}")).into_response()
            }
        })?;
        let Ok(data) = frame.into_data() else { continue };
        // Limited keeps every body under MAX_BODY, so a chunk never asks more than the budget has.
        let n = u32::try_from(data.len()).unwrap_or(u32::MAX);
        let Ok(permit) = budget.clone().acquire_many_owned(n).await else {
            return Err(StatusCode::SERVICE_UNAVAILABLE.into_response());
        };
        match held.as_mut() {
            Some(h) => h.merge(permit),
            None => held = Some(permit),
        }
        chunks.push(data);
    }
    // A review usually comes in one chunk: that one is used as it is, without a copy.
    let body = match chunks.len() {
        1 => chunks.swap_remove(0),
        _ => Bytes::from(chunks.concat()),
    };
    Ok((body, held))
}
