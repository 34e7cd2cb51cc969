#[switchboard::rpc(namespace = "store")]
trait Store {
    async fn put<T: serde::Serialize>(&self, value: T) -> u64;
}

fn main() {}
