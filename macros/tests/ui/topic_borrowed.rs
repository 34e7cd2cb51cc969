use switchboard::topic::Topic;

#[switchboard::rpc(namespace = "news")]
trait News {
    #[rpc(topic)]
    fn headlines() -> Topic<Vec<&'static str>>;
}

fn main() {}
