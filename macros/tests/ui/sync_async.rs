#[switchboard::rpc(namespace = "calc")]
trait Calculator {
    /// Sync methods are plain `fn`s.
    #[rpc(sync)]
    async fn negate(&self, value: i64) -> i64;
}

fn main() {}
