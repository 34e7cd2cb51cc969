use switchboard::shared::ErrorObject;

#[switchboard::rpc(namespace = "calc")]
trait Calculator {
    fn add(&self, a: i64, b: i64) -> Result<i64, ErrorObject>;
}

fn main() {}
