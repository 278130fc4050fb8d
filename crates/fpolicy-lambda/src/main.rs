//! The Lambda function binary (`bootstrap`); see the crate documentation
//! and docs/lambda.md for building it with cargo-lambda.

use lambda_runtime::{Error, LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .without_time()
        .init();
    let target = fpolicy_lambda::Target::from_env()?;
    let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let client = aws_sdk_eventbridge::Client::new(&config);
    lambda_runtime::run(service_fn(|event: LambdaEvent<aws_lambda_events::event::sqs::SqsEvent>| {
        let (client, target) = (client.clone(), target.clone());
        async move { Ok::<_, Error>(fpolicy_lambda::handle(&client, &target, event.payload).await) }
    }))
    .await
}
