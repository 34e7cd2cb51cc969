#[derive(serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
struct Price {
    price: f64,
}

#[switchboard::rpc(namespace = "market")]
trait Market {
    /// Not a `Topic<T>`.
    #[rpc(topic)]
    fn prices() -> Vec<Price>;
}

fn main() {}
