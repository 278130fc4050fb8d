//! The handler against moto: a bus whose rule targets an SQS queue, so
//! what the handler puts is read back. scripts/test.sh starts moto and sets
//! FPOLICY_MOTO_ENDPOINT and dummy credentials, and enables the
//! `aws-integration` feature that test needs.

use std::collections::HashSet;

use aws_lambda_events::event::sqs::SqsEvent;
use fpolicy_lambda::{Target, handle};

fn event(id: &str, path: &str) -> String {
    serde_json::json!({
        "event_id": id, "operation_type": "create", "file_path": path,
        "volume_name": "v", "svm_name": "s", "timestamp": "2026-11-27T00:00:00.000000Z",
        "file_size": 1, "metadata": {}
    })
    .to_string()
}

/// Needs moto: the `aws-integration` feature, which scripts/test.sh enables.
#[cfg(feature = "aws-integration")]
mod moto {
    use std::time::Duration;

    use aws_sdk_eventbridge::types::Target as RuleTarget;
    use aws_sdk_sqs::types::QueueAttributeName;

    use super::*;

    #[tokio::test]
    async fn puts_events_in_chunks_reports_bad_records_and_deduplicates() {
        let endpoint =
            std::env::var("FPOLICY_MOTO_ENDPOINT").expect("run scripts/test.sh (starts moto)");
        let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(&endpoint)
            .load()
            .await;
        let eb = aws_sdk_eventbridge::Client::new(&conf);
        let sqs = aws_sdk_sqs::Client::new(&conf);
        let suffix = std::process::id();
        let bus = format!("lambda-bus-{suffix}");
        eb.create_event_bus().name(&bus).send().await.unwrap();
        let url = sqs
            .create_queue()
            .queue_name(format!("lambda-q-{suffix}"))
            .send()
            .await
            .unwrap()
            .queue_url()
            .unwrap()
            .to_owned();
        let arn = sqs
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .unwrap()
            .attributes()
            .unwrap()[&QueueAttributeName::QueueArn]
            .clone();
        eb.put_rule()
            .name("all")
            .event_bus_name(&bus)
            .event_pattern(r#"{"source": ["fsxn.fpolicy"]}"#)
            .send()
            .await
            .unwrap();
        eb.put_targets()
            .rule("all")
            .event_bus_name(&bus)
            .targets(RuleTarget::builder().id("q").arn(&arn).build().unwrap())
            .send()
            .await
            .unwrap();

        // 23 valid events (one of them twice) and two bodies that are not events.
        let mut records = Vec::new();
        for i in 0..23 {
            records.push(serde_json::json!({"messageId": format!("m{i}"), "body": event(&format!("id-{i}"), &format!("/f{i}"))}));
        }
        records.push(serde_json::json!({"messageId": "dup", "body": event("id-3", "/f3")}));
        records.push(serde_json::json!({"messageId": "bad-json", "body": "not json"}));
        records.push(serde_json::json!({"messageId": "bad-shape", "body": "{\"hello\": 1}"}));
        let sqs_event: SqsEvent =
            serde_json::from_value(serde_json::json!({"Records": records})).unwrap();
        let target = Target {
            event_bus_name: bus.clone(),
            source: "fsxn.fpolicy".into(),
            detail_type: "FPolicy File Operation".into(),
        };
        let resp = handle(&eb, &target, sqs_event).await;
        let failed: HashSet<&str> = resp
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.as_str())
            .collect();
        assert_eq!(failed, HashSet::from(["bad-json", "bad-shape"]));
        let wire = serde_json::to_value(&resp).unwrap();
        assert!(
            wire["batchItemFailures"][0]["itemIdentifier"].is_string(),
            "Lambda's partial batch response shape"
        );

        let mut ids = Vec::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while ids.len() < 23 && tokio::time::Instant::now() < deadline {
            let got = sqs
                .receive_message()
                .queue_url(&url)
                .max_number_of_messages(10)
                .wait_time_seconds(1)
                .send()
                .await
                .unwrap();
            for m in got.messages() {
                let env: serde_json::Value = serde_json::from_str(m.body().unwrap()).unwrap();
                assert_eq!(env["detail-type"], "FPolicy File Operation");
                ids.push(env["detail"]["event_id"].as_str().unwrap().to_owned());
            }
        }
        ids.sort();
        let mut want: Vec<String> = (0..23).map(|i| format!("id-{i}")).collect();
        want.sort();
        assert_eq!(ids, want, "each event once, the duplicate not put twice");
    }
}

#[tokio::test]
async fn an_unreachable_bus_fails_every_event_record() {
    let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url("http://127.0.0.1:9")
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_eventbridge::config::Credentials::new(
            "a", "b", None, None, "test",
        ))
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .load()
        .await;
    let eb = aws_sdk_eventbridge::Client::new(&conf);
    let sqs_event: SqsEvent = serde_json::from_value(serde_json::json!({"Records": [
        {"messageId": "a", "body": event("1", "/a")},
        {"messageId": "b", "body": event("1", "/a")},
        {"messageId": "c", "body": event("2", "/c")}
    ]}))
    .unwrap();
    let target = Target {
        event_bus_name: "x".into(),
        source: "s".into(),
        detail_type: "d".into(),
    };
    let resp = handle(&eb, &target, sqs_event).await;
    let failed: HashSet<&str> = resp
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    assert_eq!(
        failed,
        HashSet::from(["a", "b", "c"]),
        "a duplicate fails with its original"
    );
}
