//! Execution plans: `Accept: application/vnd.pgrst.plan[+json|+text]`,
//! with `for="<media type>"` and `options=analyze|verbose|settings|buffers|wal`
//! as PostgREST (and postgrest-js's `.explain()`) send them.
//!
//! The request's own statement is run as `EXPLAIN (…) <statement>` in the
//! request's transaction, as its role, with its bound values, so the plan
//! is the one the request would get. Only when `[rest] plan_enabled` is on
//! (PostgREST's `db-plan-enabled`, off by default, because a plan reveals
//! the schema and data sizes); otherwise the media type is not available
//! (406, PGRST107). With `analyze` the statement really runs: a write's
//! changes are committed unless `Prefer: tx=rollback` is sent.

/// What a plan request asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Plan {
    /// `+json` (the EXPLAIN JSON document) rather than text.
    pub json: bool,
    /// `options=analyze`
    pub analyze: bool,
    /// `options=verbose`
    pub verbose: bool,
    /// `options=settings`
    pub settings: bool,
    /// `options=buffers`
    pub buffers: bool,
    /// `options=wal`
    pub wal: bool,
    /// `for="application/vnd.pgrst.object+json"` rather than JSON.
    pub for_object: bool,
    /// `for="text/csv"`.
    pub for_csv: bool,
}

impl Plan {
    /// Parses one media range of `Accept` (`application/vnd.pgrst.plan+json; for="…"; options=a|b`);
    /// `None` when it is not a plan media type.
    pub fn parse(range: &str) -> Option<Plan> {
        let mut parts = range.split(';');
        let mt = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let mut p = match mt.as_str() {
            "application/vnd.pgrst.plan" | "application/vnd.pgrst.plan+text" => Plan::default(),
            "application/vnd.pgrst.plan+json" => Plan { json: true, ..Plan::default() },
            _ => return None,
        };
        for param in parts {
            let Some((k, v)) = param.split_once('=') else { continue };
            let v = v.trim().trim_matches('"').to_ascii_lowercase();
            match k.trim().to_ascii_lowercase().as_str() {
                "for" => {
                    p.for_object = v == "application/vnd.pgrst.object+json" || v == "application/vnd.pgrst.object";
                    p.for_csv = v == "text/csv";
                }
                "options" => {
                    for o in v.split('|').map(str::trim) {
                        match o {
                            "analyze" => p.analyze = true,
                            "verbose" => p.verbose = true,
                            "settings" => p.settings = true,
                            "buffers" => p.buffers = true,
                            "wal" => p.wal = true,
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        Some(p)
    }

    /// `explain (…) ` to put before the statement (fixed keywords only).
    pub fn prefix(&self) -> String {
        let mut opts = vec![if self.json { "format json" } else { "format text" }];
        for (on, name) in [
            (self.analyze, "analyze"),
            (self.verbose, "verbose"),
            (self.settings, "settings"),
            (self.buffers, "buffers"),
            (self.wal && self.analyze, "wal"),
        ] {
            if on {
                opts.push(name);
            }
        }
        format!("explain ({}) ", opts.join(", "))
    }

    /// The response's `Content-Type`.
    pub fn content_type(&self) -> String {
        let for_ = if self.for_object {
            "application/vnd.pgrst.object+json"
        } else if self.for_csv {
            "text/csv"
        } else {
            "application/json"
        };
        let opts: Vec<&str> = [
            (self.analyze, "analyze"),
            (self.verbose, "verbose"),
            (self.settings, "settings"),
            (self.buffers, "buffers"),
            (self.wal, "wal"),
        ]
        .into_iter()
        .filter_map(|(on, n)| on.then_some(n))
        .collect();
        let opts = if opts.is_empty() { String::new() } else { format!("; options={}", opts.join("|")) };
        format!(
            "application/vnd.pgrst.plan+{}; for=\"{for_}\"{opts}; charset=utf-8",
            if self.json { "json" } else { "text" }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_postgrest_js_accept_values() {
        let p = Plan::parse("application/vnd.pgrst.plan+json; for=\"application/json\"; options=analyze|verbose;").expect("plan");
        assert!(p.json && p.analyze && p.verbose && !p.buffers && !p.for_object);
        assert_eq!(p.prefix(), "explain (format json, analyze, verbose) ");
        let p = Plan::parse("application/vnd.pgrst.plan").expect("plan");
        assert!(!p.json);
        assert_eq!(p.prefix(), "explain (format text) ");
        assert_eq!(p.content_type(), "application/vnd.pgrst.plan+text; for=\"application/json\"; charset=utf-8");
        assert!(Plan::parse("application/json").is_none());
        let p = Plan::parse("application/vnd.pgrst.plan+text; for=\"application/vnd.pgrst.object+json\"; options=wal|x;drop")
            .expect("plan");
        assert!(p.for_object && p.wal);
        assert_eq!(p.prefix(), "explain (format text) ", "wal needs analyze; unknown options are ignored");
    }
}
