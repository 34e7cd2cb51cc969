use switchboard::topic::Topic;

#[switchboard::rpc(namespace = "market")]
trait Market {
    async fn prices(&self) -> Vec<f64>;

    /// The same Rust name as the method.
    #[rpc(topic)]
    fn prices() -> Topic<Vec<f64>>;

    #[rpc(topic, name = "trades")]
    fn fills() -> Topic<Vec<f64>>;

    /// The same topic name as `fills`.
    #[rpc(topic)]
    fn trades() -> Topic<Vec<f64>>;

    /// A name of the generated `MarketApi`.
    #[rpc(topic)]
    fn docs() -> Topic<Vec<f64>>;

    /// Topics take no method arguments.
    #[rpc(topic, notification)]
    fn volumes() -> Topic<Vec<f64>>;
}

fn main() {}
