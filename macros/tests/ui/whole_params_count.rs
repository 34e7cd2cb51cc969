#[switchboard::rpc(namespace = "calc")]
trait Calculator {
    /// The whole params go to one param.
    #[rpc(whole_params)]
    async fn add(&self, a: i64, b: i64) -> i64;
}

fn main() {}
