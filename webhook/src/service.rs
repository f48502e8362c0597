//! The admission server's HTTP service. The two review routes, which carry all the load, are
//! answered here directly: at most `MAX_REVIEWS_IN_FLIGHT` at once, the body read up to
//! `MAX_BODY` within `REQUEST_TIMEOUT`, then `review::handle`. Everything else (health, readiness,
//! metrics, wrong methods, unknown paths) goes through axum's [`Router`]. Between hyper and the
//! handler, axum's routing, extractors and three tower layers were about 6 % of the server's CPU
//! per review (perf under scripts/bench-webhook), as much as the rest of the review's HTTP work.

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
use tokio::sync::Semaphore;
use tower::ServiceExt;

use crate::{AppState, MAX_BODY, MAX_REVIEWS_IN_FLIGHT, review, server::REQUEST_TIMEOUT};

/// The whole HTTP surface (see the module's doc). Cloned per connection.
#[derive(Clone)]
pub struct Admission {
    state: AppState,
    router: Router,
    reviews: Arc<Semaphore>,
}

impl Admission {
    /// Reviews for `state`, and `router` for the other routes.
    pub fn new(state: AppState, router: Router) -> Self {
        Self { state, router, reviews: Arc::new(Semaphore::new(MAX_REVIEWS_IN_FLIGHT)) }
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
        let (state, slots) = (self.state.clone(), self.reviews.clone());
        Box::pin(async move {
            // A client trickling its body gives up its slot (the API server's own timeout for a
            // webhook is at most 30 s, ours 5 s).
            let answer = tokio::time::timeout(REQUEST_TIMEOUT, async {
                // Each review may hold a body of up to MAX_BODY while it is read: this bounds that
                // memory (16 x 4 MiB = 64 MiB, half the Deployment's limit); more wait their turn.
                let Ok(_slot) = slots.acquire().await else {
                    return StatusCode::SERVICE_UNAVAILABLE.into_response();
                };
                match Limited::new(req.into_body(), MAX_BODY).collect().await {
                    Ok(body) => review::handle(&state, mode, &body.to_bytes()),
                    Err(e) if e.is::<LengthLimitError>() => {
                        let limit = format!("the AdmissionReview is larger than {} MiB", MAX_BODY >> 20);
                        (StatusCode::PAYLOAD_TOO_LARGE, limit).into_response()
                    }
                    Err(e) => (StatusCode::BAD_REQUEST, format!("cannot read the body: {e}")).into_response(),
                }
            });
            Ok(answer.await.unwrap_or_else(|_| StatusCode::REQUEST_TIMEOUT.into_response()))
        })
    }
}
