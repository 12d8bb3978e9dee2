//! Dispatch on the service prefix: the first path segment (`rest`, `auth`,
//! `storage`, `realtime`, `changes`) picks the one service whose warp
//! filters see the request; anything else goes to the server's own routes
//! (health, metrics, the root). Each service's filters therefore never try
//! (and reject) another service's requests, and a request costs the
//! filters of its own service only.

use std::sync::Arc;

use warp::filters::BoxedFilter;
use warp::reply::Response;

/// One service's (or the server's own) routes.
pub type Filters = BoxedFilter<(Response,)>;

/// The routes of every service, by the first segment of the path.
#[derive(Clone)]
pub struct Routes {
    services: Arc<[(&'static str, Filters)]>,
    other: Filters,
}

impl Routes {
    /// `services` by their first path segment; `other` for the rest.
    pub fn new(services: Vec<(&'static str, Filters)>, other: Filters) -> Routes {
        Routes { services: services.into(), other }
    }

    /// The filters that serve `path`.
    pub fn pick(&self, path: &str) -> &Filters {
        let first = path.trim_start_matches('/').split('/').next().unwrap_or("");
        self.services.iter().find(|(name, _)| *name == first).map_or(&self.other, |(_, f)| f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use warp::Filter;

    fn answering(body: &'static str) -> Filters {
        warp::any().map(move || Response::new(body.into())).boxed()
    }

    async fn picked(routes: &Routes, path: &str) -> String {
        use http_body_util::BodyExt;
        use tower_service::Service;
        let req = http::Request::builder().uri(path).body(http_body_util::Empty::<bytes::Bytes>::new()).expect("request");
        let res = warp::service(routes.pick(path).clone()).call(req).await.expect("infallible");
        let body = res.into_body().collect().await.expect("body").to_bytes();
        String::from_utf8_lossy(&body).into_owned()
    }

    #[tokio::test]
    async fn the_first_segment_picks_the_service() {
        let routes = Routes::new(vec![("rest", answering("rest")), ("auth", answering("auth"))], answering("other"));
        assert_eq!(picked(&routes, "/rest/v1/items").await, "rest");
        assert_eq!(picked(&routes, "/auth/v1/token").await, "auth");
        assert_eq!(picked(&routes, "/restful").await, "other");
        assert_eq!(picked(&routes, "/health").await, "other");
        assert_eq!(picked(&routes, "/").await, "other");
    }
}
