use std::borrow::Cow;

#[switchboard::rpc(namespace = "greeter")]
trait Greeter {
    async fn greet(&self, name: Cow<'static, str>) -> String;
}

fn main() {}
