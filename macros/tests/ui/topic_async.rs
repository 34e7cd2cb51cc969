use switchboard::topic::Topic;

#[derive(serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
struct Price {
    price: f64,
}

#[switchboard::rpc(namespace = "market")]
trait Market {
    #[rpc(topic)]
    async fn prices() -> Topic<Price>;

    #[rpc(topic)]
    fn quotes() -> Topic<Price> {
        todo!()
    }
}

fn main() {}
