use switchboard::topic::Topic;

#[derive(serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
struct Price {
    price: f64,
}

#[switchboard::rpc(namespace = "market")]
trait Market {
    /// Prices of one symbol.
    #[rpc(topic)]
    fn prices(&self, symbol: String) -> Topic<Price>;
}

fn main() {}
