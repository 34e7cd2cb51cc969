#[switchboard::rpc(namespace = "session")]
trait Session {
    async fn finish(self) -> String;
}

fn main() {}
