#[switchboard::rpc(namespace = "clock")]
trait Clock {
    async fn now() -> u64;
}

fn main() {}
