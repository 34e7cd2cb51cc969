//! A chat room: clients call `say`, and everyone subscribed to the `chat`
//! topic gets the message as a `chat` notification.
//!
//! Shows: an authenticator that names each connection (`?name=alice`),
//! a handler that reads that name from its context and publishes to a topic,
//! clients subscribing with `Client::subscribe`, and the topic documented in
//! `rpc.discover` (`x-topics`).
//!
//! ```text
//! cargo run --example chat                 # hub + alice, bob and carol in one process: prints the conversation, exits
//! cargo run --example chat -- --serve      # only the hub, on ws://127.0.0.1:9001/, until Ctrl-C
//! ```
//!
//! With `--serve`, chat from two shells with the `switchboard` command:
//!
//! ```text
//! cargo run -- listen 'ws://127.0.0.1:9001/?name=bob' --topic chat
//! cargo run -- call 'ws://127.0.0.1:9001/?name=alice' say '["hello bob"]'
//! ```

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use serde::{Deserialize, Serialize};
use serde_json::json;
use switchboard::client::{Client, Subscription};
use switchboard::server::{Rejection, Server, ServerContext, ServerHandle};
use switchboard::shared::discover::{ServiceInfo, TopicDoc};
use switchboard::shared::{Context, ErrorObject, Methods};

/// The topic every message is published to (and the notification's method).
const TOPIC: &str = "chat";

/// How long a client waits for a message before the demo calls it lost.
const PATIENCE: Duration = Duration::from_secs(10);

/// A chat hub, and a scripted conversation against it.
#[derive(Debug, Parser)]
#[command(about)]
struct Args {
    /// Only run the hub, until Ctrl-C.
    #[arg(long)]
    serve: bool,
    /// Where the hub listens with --serve.
    #[arg(long, default_value = "127.0.0.1:9001")]
    addr: SocketAddr,
}

/// `say`'s params: `["text"]` or `{"text": "..."}`.
#[derive(Debug, Deserialize)]
struct Say {
    text: String,
}

/// What everyone in the room receives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Message {
    from: String,
    text: String,
}

/// Starts the hub: every connection must say who it is with `?name=`.
async fn hub(addr: SocketAddr) -> Result<ServerHandle, Box<dyn std::error::Error>> {
    let mut methods = Methods::new();
    methods
        .register_sync("say", |Say { text }: Say, cx: Context| {
            let from = cx.auth().and_then(|auth| auth["name"].as_str()).unwrap_or("someone").to_owned();
            let server = cx.server()?;
            let heard = server.subscribers(TOPIC);
            server.publish(TOPIC, TOPIC, Message { from, text })?;
            Ok::<_, ErrorObject>(heard)
        })
        .describe("Sends a message to everyone subscribed to `chat`; answers how many it reached.");
    let room = ServiceInfo::new("chat example", env!("CARGO_PKG_VERSION")).topic(TopicDoc {
        name: TOPIC.into(),
        summary: Some("Every message said in the room: {\"from\": .., \"text\": ..}.".into()),
        method: Some(TOPIC.into()),
        schema: None,
    });
    let server = Server::builder()
        .authenticate(|req| match req.query_param("name") {
            Some(name) if !name.trim().is_empty() && name.len() <= 32 => Ok(json!({ "name": name.trim() })),
            _ => Err(Rejection::Unauthorized("say who you are: ws://HOST/?name=YOUR_NAME".into())),
        })
        .discovery(room)
        .build(methods)
        .listen(addr)
        .await?;
    Ok(server)
}

/// One person in the room.
struct Person {
    name: &'static str,
    client: Client,
    inbox: Subscription,
}

impl Person {
    async fn join(url: &str, name: &'static str) -> Result<Person, Box<dyn std::error::Error>> {
        let client = Client::connect(&format!("{url}?name={name}")).await?;
        let inbox = client.subscribe(TOPIC).await?;
        Ok(Person { name, client, inbox })
    }

    /// The next message this person hears.
    async fn hear(&mut self) -> Result<Message, Box<dyn std::error::Error>> {
        let next = tokio::time::timeout(PATIENCE, self.inbox.next()).await;
        let notification = next
            .map_err(|_| format!("{} heard nothing for {PATIENCE:?}", self.name))?
            .ok_or_else(|| format!("{}'s connection ended", self.name))??;
        Ok(notification.params()?)
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    if args.serve {
        let server = hub(args.addr).await?;
        let addr = server.local_addr().expect("the hub listens");
        println!("chat hub listening on ws://{addr}/ (connect with ?name=YOUR_NAME; Ctrl-C to stop)");
        tokio::signal::ctrl_c().await?;
        server.shutdown(Duration::from_secs(5)).await;
        return Ok(());
    }

    let server = hub("127.0.0.1:0".parse()?).await?;
    let url = format!("ws://{}/", server.local_addr().expect("the hub listens"));
    println!("chat hub on {url}");
    let mut people = Vec::new();
    for name in ["alice", "bob", "carol"] {
        people.push(Person::join(&url, name).await?);
    }
    println!("alice, bob and carol joined the `{TOPIC}` topic");

    let script =
        [(0, "Hi both!"), (1, "Hello Alice. Carol, are you there?"), (2, "Here! Lunch at noon?"), (0, "Noon it is.")];
    for (speaker, text) in script {
        let reached: usize = people[speaker].client.call("say", [text]).await?;
        println!("{}: {text}", people[speaker].name);
        let expected = Message { from: people[speaker].name.to_owned(), text: text.to_owned() };
        let mut heard_by = Vec::new();
        for person in &mut people {
            let message = person.hear().await?;
            if message != expected {
                return Err(format!("{} heard {message:?}, expected {expected:?}", person.name).into());
            }
            heard_by.push(person.name);
        }
        println!("    (reached {reached}; heard by {})", heard_by.join(", "));
    }

    for person in &people {
        person.client.close().await;
    }
    server.shutdown(Duration::from_secs(5)).await;
    println!("{} messages, each heard by all {} people", script.len(), people.len());
    Ok(())
}
