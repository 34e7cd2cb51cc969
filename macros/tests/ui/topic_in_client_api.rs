use switchboard::topic::Topic;

#[switchboard::rpc(client, namespace = "sensor")]
trait Sensor {
    /// Clients do not publish.
    #[rpc(topic)]
    fn readings() -> Topic<Vec<f64>>;
}

fn main() {}
