#[switchboard::rpc(namespace = "rpc")]
trait Builtins {
    async fn discover(&self) -> String;
}

fn main() {}
