#[switchboard::rpc(namespace = "log")]
trait Log {
    #[rpc(notification)]
    async fn write(&self, line: String) -> bool;
}

fn main() {}
