//! The scheduler as its users meet it: the real binary on a real
//! PostgreSQL, driven through its API, calling a target server on
//! 127.0.0.1 that counts what it gets. One test binary, so that one
//! private cluster serves every test.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use common::{Instance, Target, message_count, stream, wait_until};
use serde_json::{Value, json};

const MINUTE: Duration = Duration::from_secs(60);

fn runs_of(history: &[Value]) -> Vec<u64> {
    history
        .iter()
        .map(|run| run["run"].as_u64().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_400_naming_the_field_and_nothing_is_written() {
    let db = ebb_tests::database().await;
    let instance = Instance::start("a", &db, &[]).await;
    let api = instance.api();
    let ok = r#""request": {"method": "GET", "url": "http://127.0.0.1:9/"}"#;
    for (body, field) in [
        (format!(r#"{{{ok}, "priority": 1}}"#), "priority"),
        (
            r#"{"request": {"method": "GET", "url": "http://127.0.0.1:9/", "timeout": 5}}"#.into(),
            "request.timeout",
        ),
        (
            r#"{"request": {"url": "http://127.0.0.1:9/"}}"#.into(),
            "request.method",
        ),
        (
            r#"{"request": {"method": "PATCH", "url": "http://127.0.0.1:9/"}}"#.into(),
            "request.method",
        ),
        (
            r#"{"request": {"method": "GET", "url": "127.0.0.1:9"}}"#.into(),
            "request.url",
        ),
        (
            r#"{"request": {"method": "GET", "url": "http://"}}"#.into(),
            "request.url",
        ),
        (
            format!(r#"{{{ok}, "schedule": {{"everyMs": -100}}}}"#),
            "schedule.everyMs",
        ),
        (
            format!(
                r#"{{{ok}, "schedule": {{"everyMs": 100, "startAt": "2031-01-02T00:00:00Z", "endAt": "2031-01-01T00:00:00Z"}}}}"#
            ),
            "schedule.endAt",
        ),
        (
            format!(r#"{{{ok}, "schedule": {{"startAt": "tomorrow"}}}}"#),
            "schedule.startAt",
        ),
        (
            format!(r#"{{{ok}, "retry": {{"intervalsMs": [100, -1]}}}}"#),
            "retry.intervalsMs[1]",
        ),
        (
            format!(r#"{{{ok}, "retry": {{"retryStatus": [1000]}}}}"#),
            "retry.retryStatus[0]",
        ),
        (
            format!(r#"{{{ok}, "retry": {{"retryTransport": "yes"}}}}"#),
            "retry.retryTransport",
        ),
        (
            format!(r#"{{{ok}, "callback": {{"url": "http://10.0.0.1/"}}}}"#),
            "callback.url",
        ),
        (
            r#"{"request": {"method": "GET", "url": "http://10.1.2.3/"}}"#.into(),
            "request.url",
        ),
        (
            r#"{"request": {"method": "GET", "url": "http://169.254.169.254/latest/meta-data"}}"#
                .into(),
            "request.url",
        ),
        (
            r#"{"request": {"method": "GET", "url": "http://[fd00:ec2::254]/"}}"#.into(),
            "request.url",
        ),
        ("not json".into(), ""),
    ] {
        let (status, answer) = api.post_raw("/jobs", &body).await;
        assert_eq!(status, 400, "{body}: {answer}");
        assert_eq!(answer["field"], field, "{body}: {answer}");
        assert!(
            answer["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{answer}"
        );
    }
    for query in ["state=finished", "limit=0", "offset=-1", "limit=many"] {
        let (status, answer) = api.get(&format!("/jobs?{query}")).await;
        assert_eq!(status, 400, "{query}: {answer}");
    }
    assert_eq!(api.get("/jobs/nope").await.0, 404);
    assert_eq!(api.delete("/jobs/nope").await.0, 404);
    assert_eq!(
        message_count(&db).await,
        0,
        "a refused request writes nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loopback_targets_are_refused_unless_allowed_also_by_name_and_on_redirects() {
    let db = ebb_tests::database().await;
    let target = Target::start().await;
    let strict = Instance::start("strict", &db, &[("EBB_SCHEDULER_ALLOW_LOOPBACK", "")]).await;
    let port = target.addr.port();
    for (url, field) in [
        (format!("http://127.0.0.1:{port}/ok"), "request.url"),
        (format!("http://localhost:{port}/ok"), "request.url"),
        (format!("http://[::1]:{port}/ok"), "request.url"),
    ] {
        let job = json!({"request": {"method": "GET", "url": url}});
        let (status, answer) = strict.api().post_raw("/jobs", &job.to_string()).await;
        assert_eq!(
            (status, answer["field"].as_str()),
            (400, Some(field)),
            "{url}: {answer}"
        );
    }
    assert_eq!(message_count(&db).await, 0);
    strict.kill().await;

    // Allowed: loopback only. A redirect to the metadata address is
    // checked like the first hop and refused; one to loopback is followed.
    let instance = Instance::start("loopback", &db, &[]).await;
    let api = instance.api();
    let metadata = api
        .create(&json!({"request": {"method": "GET",
            "url": target.url("/redirect?to=http%3A%2F%2F169.254.169.254%2Flatest")}}))
        .await;
    let followed = api
        .create(&json!({"request": {"method": "GET",
            "url": target.url(&format!("/redirect?to=http%3A%2F%2Flocalhost%3A{port}%2Fok"))}}))
        .await;
    let refused = api.wait_for_state(&metadata, &["failed"], MINUTE).await;
    assert_eq!(refused["runs"], 1);
    let history = api.history(&metadata).await;
    let error = history[0]["error"].as_str().unwrap();
    assert!(error.contains("169.254.169.254"), "{error}");
    assert_eq!(
        history[0]["attempts"].as_array().unwrap().len(),
        1,
        "refusals are not retried"
    );
    api.wait_for_state(&followed, &["succeeded"], MINUTE).await;
    assert_eq!(target.hits_for("/ok", &format!("{followed}-1")).len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_that_runs_once_succeeds_and_its_history_has_the_call() {
    let db = ebb_tests::database().await;
    let target = Target::start().await;
    let instance = Instance::start("a", &db, &[]).await;
    let api = instance.api();
    let id = api
        .create(
            &json!({"request": {"method": "POST", "url": target.url("/big?bytes=10000"),
            "headers": {"X-Test": "yes"}, "body": "hello"}}),
        )
        .await;
    let job = api.wait_for_state(&id, &["succeeded"], MINUTE).await;
    assert_eq!(job["id"], id);
    assert_eq!(job["runs"], 1);
    assert_eq!(job["nextRunAt"], Value::Null);
    let hits = target.hits_for("/big", &format!("{id}-1"));
    assert_eq!(hits.len(), 1, "{hits:?}");
    assert_eq!(hits[0].method, "POST");
    assert_eq!(hits[0].body, "hello");
    assert_eq!(
        hits[0].headers.get("x-test").map(String::as_str),
        Some("yes")
    );
    let history = api.history(&id).await;
    assert_eq!(runs_of(&history), [1]);
    let run = &history[0];
    assert_eq!(run["outcome"], "succeeded");
    assert_eq!(run["status"], 200);
    let attempt = &run["attempts"][0];
    assert_eq!(attempt["status"], 200);
    assert!(attempt["durationMs"].as_i64().is_some());
    assert_eq!(
        attempt["body"].as_str().unwrap().len(),
        4096,
        "the body is cut at its bound"
    );
    assert_eq!(attempt["bodyTruncated"], true);
    let types: Vec<String> = stream(&db, &format!("httpJob-{id}"))
        .await
        .into_iter()
        .map(|m| m.type_name)
        .collect();
    assert_eq!(
        types,
        [
            "Scheduled",
            "RunStarted",
            "AttemptMade",
            "RunSucceeded",
            "Completed"
        ]
    );
    assert_eq!(
        stream(&db, &format!("httpJob:command-{id}")).await[0].type_name,
        "Schedule"
    );
    let (_, listed) = api.get("/jobs?state=succeeded").await;
    assert_eq!(listed["jobs"][0]["id"], id, "{listed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeating_job_runs_max_runs_times_each_once() {
    let db = ebb_tests::database().await;
    let target = Target::start().await;
    let instance = Instance::start("a", &db, &[]).await;
    let api = instance.api();
    let id = api
        .create(
            &json!({"request": {"method": "GET", "url": target.url("/ok")},
            "schedule": {"everyMs": 200, "maxRuns": 4}}),
        )
        .await;
    let job = api.wait_for_state(&id, &["completed"], MINUTE).await;
    assert_eq!(job["runs"], 4);
    assert_eq!(job["nextRunAt"], Value::Null);
    for run in 1..=4 {
        assert_eq!(
            target.hits_for("/ok", &format!("{id}-{run}")).len(),
            1,
            "run {run}"
        );
    }
    assert_eq!(target.hits().len(), 4);
    let history = api.history(&id).await;
    assert_eq!(runs_of(&history), [1, 2, 3, 4]);
    let dues: Vec<chrono::DateTime<chrono::Utc>> = history
        .iter()
        .map(|run| run["dueAt"].as_str().unwrap().parse().unwrap())
        .collect();
    for pair in dues.windows(2) {
        assert!(
            pair[1] - pair[0] >= chrono::Duration::milliseconds(200),
            "{dues:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statuses_are_retried_as_the_policy_says_honouring_retry_after() {
    let db = ebb_tests::database().await;
    let target = Target::start().await;
    let instance = Instance::start("a", &db, &[]).await;
    let api = instance.api();
    let retry = json!({"intervalsMs": [10, 10, 10], "retryStatus": [503]});
    let busy = api
        .create(
            &json!({"request": {"method": "GET", "url": target.url("/flaky?fail=2&retryAfter=1")},
            "retry": retry}),
        )
        .await;
    let bad = api
        .create(
            &json!({"request": {"method": "GET", "url": target.url("/status/400")},
            "retry": retry}),
        )
        .await;
    let too_long = api
        .create(
            &json!({"request": {"method": "GET", "url": target.url("/flaky?fail=1&retryAfter=30")},
            "retry": retry}),
        )
        .await;

    api.wait_for_state(&busy, &["succeeded"], MINUTE).await;
    let hits = target.hits_for("/flaky", &format!("{busy}-1"));
    assert_eq!(
        hits.iter().map(|h| h.answered).collect::<Vec<_>>(),
        [503, 503, 200]
    );
    for pair in hits.windows(2) {
        let waited = pair[1].at - pair[0].at;
        assert!(
            waited >= Duration::from_millis(950),
            "Retry-After: 1 waited only {waited:?}"
        );
    }
    let history = api.history(&busy).await;
    let statuses: Vec<&Value> = history[0]["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| &a["status"])
        .collect();
    assert_eq!(statuses, [&json!(503), &json!(503), &json!(200)]);

    let job = api.wait_for_state(&bad, &["failed"], MINUTE).await;
    assert_eq!(job["runs"], 1);
    assert_eq!(
        target.hits_for("/status/400", &format!("{bad}-1")).len(),
        1,
        "400 is not retried"
    );
    assert_eq!(api.history(&bad).await[0]["status"], 400);

    api.wait_for_state(&too_long, &["failed"], MINUTE).await;
    assert_eq!(
        target.hits_for("/flaky", &format!("{too_long}-1")).len(),
        1,
        "a Retry-After past the limit ends the run rather than call early"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_connections_are_retried_when_transport_errors_are() {
    let db = ebb_tests::database().await;
    let target = Target::start().await;
    let instance = Instance::start("a", &db, &[]).await;
    let api = instance.api();
    let url = target.url("/flaky?fail=2&mode=reset");
    let retried = api
        .create(&json!({"request": {"method": "GET", "url": url},
            "retry": {"intervalsMs": [20, 20, 20], "retryTransport": true}}))
        .await;
    let not_retried = api
        .create(&json!({"request": {"method": "GET", "url": url},
            "retry": {"intervalsMs": [20, 20, 20], "retryTransport": false}}))
        .await;
    api.wait_for_state(&retried, &["succeeded"], MINUTE).await;
    let history = api.history(&retried).await;
    let attempts = history[0]["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 3);
    assert!(attempts[0]["status"].is_null());
    // The recorded error is the call's error with its causes, on one line.
    let error = attempts[0]["error"].as_str().unwrap();
    assert!(error.starts_with("no answer: "), "{error}");
    assert!(error.matches(": ").count() >= 2, "{error}");
    assert_eq!(attempts[2]["status"], 200);

    api.wait_for_state(&not_retried, &["failed"], MINUTE).await;
    assert_eq!(
        target.hits_for("/flaky", &format!("{not_retried}-1")).len(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_runs_outcome_is_posted_to_the_callback_which_is_retried() {
    let db = ebb_tests::database().await;
    let target = Target::start().await;
    let instance = Instance::start("a", &db, &[]).await;
    let api = instance.api();
    let id = api
        .create(
            &json!({"request": {"method": "GET", "url": target.url("/ok")},
            "schedule": {"everyMs": 100, "maxRuns": 2},
            "callback": {"url": target.url("/flaky?fail=1")}}),
        )
        .await;
    api.wait_for_state(&id, &["completed"], MINUTE).await;
    wait_until("both callbacks recorded", MINUTE, || {
        let api = api.clone();
        let id = id.clone();
        async move {
            api.history(&id)
                .await
                .iter()
                .all(|run| run["callback"]["delivered"] == true)
        }
    })
    .await;
    for run in 1..=2 {
        let calls = target.hits_for("/flaky", &format!("{id}-{run}"));
        assert_eq!(
            calls.iter().map(|c| c.answered).collect::<Vec<_>>(),
            [503, 200]
        );
        let posted: Value = serde_json::from_str(&calls[1].body).unwrap();
        assert_eq!(posted["jobId"], id);
        assert_eq!(posted["run"], run);
        assert_eq!(posted["outcome"], "succeeded");
        assert_eq!(posted["status"], 200);
        assert_eq!(posted["body"], format!("ok {id}-{run}"));
        assert_eq!(calls[1].method, "POST");
    }
    assert_eq!(api.history(&id).await[1]["callback"]["attempts"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_job_runs_no_more_and_listing_filters_and_pages() {
    let db = ebb_tests::database().await;
    let target = Target::start().await;
    let instance = Instance::start("a", &db, &[]).await;
    let api = instance.api();
    let repeating = api
        .create(
            &json!({"request": {"method": "GET", "url": target.url("/ok")},
            "schedule": {"everyMs": 150}}),
        )
        .await;
    let later = chrono::Utc::now() + chrono::Duration::hours(1);
    let mut waiting = Vec::new();
    for _ in 0..3 {
        waiting.push(
            api.create(
                &json!({"request": {"method": "GET", "url": target.url("/ok")},
                "schedule": {"startAt": later.to_rfc3339()}}),
            )
            .await,
        );
    }
    wait_until("two runs", MINUTE, || {
        let target = target.clone();
        async move { target.hits().len() >= 2 }
    })
    .await;
    let (status, cancelled) = api.delete(&format!("/jobs/{repeating}")).await;
    assert_eq!(
        (status, &cancelled["state"]),
        (200, &json!("cancelled")),
        "{cancelled}"
    );
    let calls = hits_of(&target, &repeating);
    // A one-off job due three of the cancelled job's periods from now: the
    // timer starts runs in the order they fall due, so once it has run, a
    // run of the cancelled job falling due before it (one a period, had
    // the cancel not held) would have been made.
    let marker_at = chrono::Utc::now() + chrono::Duration::milliseconds(450);
    let marker = api
        .create(
            &json!({"request": {"method": "GET", "url": target.url("/ok")},
            "schedule": {"startAt": marker_at.to_rfc3339()}}),
        )
        .await;
    api.wait_for_state(&marker, &["succeeded"], MINUTE).await;
    assert!(
        hits_of(&target, &repeating) <= calls + 1,
        "at most the run in flight finishes after a cancel"
    );
    assert_eq!(api.job(&repeating).await["nextRunAt"], Value::Null);
    assert_eq!(
        api.delete(&format!("/jobs/{repeating}")).await.0,
        200,
        "cancelling again"
    );

    let (_, scheduled) = api.get("/jobs?state=scheduled").await;
    assert_eq!(scheduled["total"], 3);
    let ids: Vec<&str> = scheduled["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|job| job["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, waiting, "in the order scheduled");
    assert_eq!(
        scheduled["jobs"][0]["nextRunAt"].as_str().unwrap()[..16],
        later.to_rfc3339()[..16]
    );
    let (_, page) = api.get("/jobs?state=scheduled&offset=1&limit=1").await;
    assert_eq!(page["jobs"].as_array().unwrap().len(), 1);
    assert_eq!(page["jobs"][0]["id"], waiting[1]);
    let (_, cancelled) = api.get("/jobs?state=cancelled").await;
    assert_eq!(cancelled["jobs"][0]["id"], repeating);
    let (_, all) = api.get("/jobs").await;
    assert_eq!(all["total"], 5, "the marker too");
}

/// The calls the target got for job `id`'s runs (their keys are
/// `ID-RUN`).
fn hits_of(target: &Target, id: &str) -> usize {
    let prefix = format!("{id}-");
    target
        .hits()
        .iter()
        .filter(|hit| hit.key.starts_with(&prefix))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_loses_nothing_and_an_interrupted_run_runs_again() {
    let db = ebb_tests::database().await;
    let target = Target::start().await;
    let settings = [("EBB_SCHEDULER_CALL_TIMEOUT_MS", "3000")];
    let first = Instance::start("first", &db, &settings).await;
    let api = first.api();
    let repeating = api
        .create(
            &json!({"request": {"method": "GET", "url": target.url("/ok")},
            "schedule": {"everyMs": 300, "maxRuns": 6}}),
        )
        .await;
    // Due well after the kill below (which comes as soon as the held call
    // is under way), and about when the interrupted run's lease runs out.
    let start_at = chrono::Utc::now() + chrono::Duration::milliseconds(4_000);
    let later = api
        .create(
            &json!({"request": {"method": "GET", "url": target.url("/ok")},
            "schedule": {"startAt": start_at.to_rfc3339()}}),
        )
        .await;
    // Its call is held by the target until the test lets it go, after the
    // kill: the run is interrupted mid-call however slow the machine.
    let slow = api
        .create(&json!({"request": {"method": "GET", "url": target.url("/held")}}))
        .await;
    wait_until("the held call under way", MINUTE, || {
        let (target, slow) = (target.clone(), slow.clone());
        async move { !target.hits_for("/held", &format!("{slow}-1")).is_empty() }
    })
    .await;
    first.kill().await;
    let killed_at = Instant::now();
    // The next claimer's call answers at once.
    target.release_held();
    assert!(
        stream(&db, &format!("httpJob-{slow}"))
            .await
            .iter()
            .all(|m| m.type_name != "RunSucceeded"),
        "killed mid-call"
    );
    assert!(
        target.hits_for("/ok", &format!("{later}-1")).is_empty(),
        "not due before the kill"
    );

    let second = Instance::start("second", &db, &settings).await;
    let api = second.api();
    wait_until("the index rebuilt", MINUTE, || {
        let api = api.clone();
        async move { api.get("/jobs").await.1["total"] == 3 }
    })
    .await;
    let job = api.wait_for_state(&repeating, &["completed"], MINUTE).await;
    assert_eq!(job["runs"], 6);
    assert_eq!(runs_of(&api.history(&repeating).await), [1, 2, 3, 4, 5, 6]);
    for run in 1..=6 {
        let calls = target.hits_for("/ok", &format!("{repeating}-{run}")).len();
        assert!((1..=2).contains(&calls), "run {run}: {calls} calls");
    }
    api.wait_for_state(&later, &["succeeded"], MINUTE).await;
    let calls = target.hits_for("/ok", &format!("{later}-1"));
    assert_eq!(calls.len(), 1);
    assert!(calls[0].at > killed_at, "run after the restart");
    let job = api.wait_for_state(&slow, &["succeeded"], MINUTE).await;
    assert_eq!(job["runs"], 1);
    let history = api.history(&slow).await;
    assert_eq!(
        history[0]["claims"], 2,
        "claimed again once the lease ran out"
    );
    assert_eq!(
        target.hits_for("/held", &format!("{slow}-1")).len(),
        2,
        "the interrupted call was made again with the same key"
    );
    let outcomes = stream(&db, &format!("httpJob-{slow}"))
        .await
        .into_iter()
        .filter(|m| m.type_name == "RunSucceeded" || m.type_name == "RunFailed")
        .count();
    assert_eq!(outcomes, 1);
    assert_eq!(second.stop().await, Some(0), "SIGTERM stops it cleanly");
}

/// Two instances on one database, one SIGKILLed and restarted a few
/// times while jobs run against a target that resets connections,
/// answers 503 with Retry-After, and 400: every run of every job has
/// exactly one outcome, none is missing, and a run was called more than
/// once (with its key) only when its claimer was killed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::print_stderr)] // its tally, for `--nocapture`
async fn hot_failover_records_every_run_exactly_once_under_sigkill() {
    const RUNS: u64 = 10;
    const KILLS: usize = 3;
    let db = ebb_tests::database().await;
    let target = Target::start().await;
    let settings = [("EBB_SCHEDULER_MAX_RETRY_AFTER_MS", "500")];
    let mut instances = [
        Some(Instance::start("a", &db, &settings).await),
        Some(Instance::start("b", &db, &settings).await),
    ];
    let api = instances[1].as_ref().unwrap().api();
    let retry = json!({"intervalsMs": [20, 20], "retryStatus": [503], "retryTransport": true});
    let mut jobs = Vec::new();
    for (index, path) in [
        "/slow?ms=150",
        "/flaky?fail=1&retryAfter=0",
        "/flaky?fail=1&mode=reset",
        "/status/400",
        "/ok",
        "/slow?ms=250",
    ]
    .into_iter()
    .enumerate()
    {
        let id = api
            .create(
                &json!({"request": {"method": "GET", "url": target.url(path)},
                "schedule": {"everyMs": 400 + 20 * index, "maxRuns": RUNS},
                "retry": retry}),
            )
            .await;
        jobs.push((id, path.split('?').next().unwrap().to_owned()));
    }
    for kill in 0..KILLS {
        // Each kill comes once the jobs have made a few more calls since
        // the last: it falls among runs under way.
        let before = target.hits().len();
        wait_until("more calls before the next kill", MINUTE, || {
            let target = target.clone();
            async move { target.hits().len() >= before + 4 }
        })
        .await;
        let victim = kill % 2;
        instances[victim].take().unwrap().kill().await;
        // The victim stays down a while before its restart (as under a
        // supervisor's restart delay): the other instance carries on
        // alone meanwhile.
        tokio::time::sleep(Duration::from_millis(300)).await;
        instances[victim] =
            Some(Instance::start(&format!("{}{kill}", ["a", "b"][victim]), &db, &settings).await);
    }
    let api = instances[0].as_ref().unwrap().api();
    for (id, _) in &jobs {
        api.wait_for_state(id, &["completed"], MINUTE).await;
    }

    let (mut called_again, mut repeated) = (0, 0);
    for (id, path) in &jobs {
        // From the store: exactly one outcome per run, runs 1..=RUNS;
        // each run's claims numbered 1, 2, ... once each (no two
        // instances ever held the same claim); the calls each made.
        let mut outcomes: BTreeMap<u64, usize> = BTreeMap::new();
        let mut claims: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
        let mut attempts: BTreeMap<u64, usize> = BTreeMap::new();
        for message in stream(&db, &format!("httpJob-{id}")).await {
            let data: Value = message.data().unwrap();
            let run = data["run"].as_u64().unwrap_or(0);
            match message.type_name.as_str() {
                "RunSucceeded" | "RunFailed" => *outcomes.entry(run).or_default() += 1,
                "RunStarted" => claims
                    .entry(run)
                    .or_default()
                    .push(data["claim"].as_u64().unwrap()),
                "AttemptMade" => *attempts.entry(run).or_default() += 1,
                _ => {}
            }
        }
        let expected: BTreeMap<u64, usize> = (1..=RUNS).map(|run| (run, 1)).collect();
        assert_eq!(outcomes, expected, "job {id} ({path})");
        for (run, numbers) in &claims {
            let expected: Vec<u64> = (1..=numbers.len() as u64).collect();
            assert_eq!(numbers, &expected, "job {id} ({path}) run {run}: claims");
        }
        // From the target: every run's call accepted at least once, and
        // each call it accepted accounted for: an attempt the store
        // recorded, or the one in flight when a claimer was killed (a
        // claim taken over).
        let mut accepted: HashMap<String, usize> = HashMap::new();
        for hit in target.hits() {
            if hit.path == *path
                && hit.key.starts_with(id.as_str())
                && hit.answered != 0
                && hit.answered != 503
            {
                *accepted.entry(hit.key).or_default() += 1;
            }
        }
        for run in 1..=RUNS {
            let count = accepted.get(&format!("{id}-{run}")).copied().unwrap_or(0);
            assert!(
                count >= 1,
                "job {id} ({path}) run {run} never reached the target"
            );
            let taken_over = claims[&run].len() - 1;
            let recorded = attempts.get(&run).copied().unwrap_or(0);
            assert!(
                count <= recorded + taken_over,
                "job {id} ({path}) run {run}: {count} calls accepted, {recorded} recorded, {taken_over} claims taken over"
            );
            repeated += usize::from(count > 1);
            called_again += usize::from(taken_over > 0);
        }
        let history = api.history(id).await;
        assert_eq!(runs_of(&history), (1..=RUNS).collect::<Vec<_>>());
    }
    eprintln!(
        "hot failover: {} runs, {called_again} claimed again after a kill, {repeated} called more than once",
        RUNS as usize * jobs.len()
    );
    // Each kill interrupts at most the runs its victim had in flight.
    assert!(
        called_again <= KILLS * jobs.len(),
        "{called_again} runs claimed again, with {KILLS} kills"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_is_kept_to_its_bound_and_the_job_is_compacted() {
    let db = ebb_tests::database().await;
    let target = Target::start().await;
    let instance = Instance::start(
        "a",
        &db,
        &[
            ("EBB_SCHEDULER_KEEP_RUNS", "3"),
            ("EBB_SCHEDULER_SNAPSHOT_INTERVAL", "5"),
        ],
    )
    .await;
    let api = instance.api();
    let id = api
        .create(
            &json!({"request": {"method": "GET", "url": target.url("/ok")},
            "schedule": {"everyMs": 50, "maxRuns": 12}}),
        )
        .await;
    let job = api.wait_for_state(&id, &["completed"], MINUTE).await;
    assert_eq!(job["runs"], 12);
    assert_eq!(runs_of(&api.history(&id).await), [10, 11, 12]);
    let (_, page) = api
        .get(&format!("/jobs/{id}/history?from=11&limit=1"))
        .await;
    assert_eq!(runs_of(page["runs"].as_array().unwrap()), [11]);
    assert_eq!(page["nextFrom"], 12);

    let events = stream(&db, &format!("httpJob-{id}")).await.len();
    let snapshots = stream(&db, &format!("httpJob:snapshot-{id}")).await;
    assert!(!snapshots.is_empty(), "snapshots written");
    let latest: Value = snapshots.last().unwrap().data().unwrap();
    let version = latest["entityVersion"].as_i64().unwrap();
    assert!(
        events as i64 - 1 - version < 5,
        "a fetch reads fewer than the interval's events past the snapshot ({events} events, snapshot at {version})"
    );
    let kept = latest["entityData"]["history"].as_array().unwrap().len();
    assert!(
        kept <= 3,
        "the snapshot holds the retained runs only: {kept}"
    );

    // A fresh instance (no cache) answers from the snapshot the same.
    instance.kill().await;
    let fresh = Instance::start("fresh", &db, &[("EBB_SCHEDULER_KEEP_RUNS", "3")]).await;
    assert_eq!(runs_of(&fresh.api().history(&id).await), [10, 11, 12]);
    assert_eq!(fresh.api().job(&id).await["runs"], 12);
}
