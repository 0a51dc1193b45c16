//! `volley serve`: the demo server on the embedded defaults.

use std::process::ExitCode;
use volley::{Handler, Message, Options, Request, Response, Server, Upgrade, WebSocket};

const PAGE: &str = include_str!("page.html");

struct Demo;

impl Handler for Demo {
    type Data = ();

    fn upgrade(&self, _req: &Request<'_>) -> Upgrade<()> {
        Upgrade::accept(())
    }

    fn message(&self, ws: &mut WebSocket<'_, ()>, msg: Message<'_>) {
        ws.send(msg);
    }

    fn fetch(&self, req: &Request<'_>) -> Option<Response> {
        match req.path() {
            "/" => {
                Some(Response::new(200, PAGE).header("Content-Type", "text/html; charset=utf-8"))
            }
            "/health" => Some(Response::new(200, "ok\n")),
            _ => None,
        }
    }
}

pub fn main(args: &[String]) -> ExitCode {
    let flags = match crate::flags(args) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("volley serve: {e}");
            return ExitCode::from(2);
        }
    };
    let mut host = "127.0.0.1".to_string();
    let mut port = "9001".to_string();
    let mut opts = Options::default();
    for (n, v) in flags {
        match n.as_str() {
            "host" => host = v,
            "port" => port = v,
            "workers" => match v.parse() {
                Ok(w) => opts.workers = w,
                Err(_) => {
                    eprintln!("volley serve: --workers takes a number");
                    return ExitCode::from(2);
                }
            },
            other => {
                eprintln!("volley serve: unknown option --{other}");
                return ExitCode::from(2);
            }
        }
    }
    let addr = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let server = match Server::builder()
        .bind(addr)
        .options(opts)
        .route("/echo")
        .serve(Demo)
    {
        Ok(s) => s,
        Err(e) => {
            eprintln!("volley serve: {e}");
            return ExitCode::FAILURE;
        }
    };
    let a = server.local_addr();
    println!("volley: listening on http://{a}/ (WebSocket echo at ws://{a}/echo)");
    server.join();
    ExitCode::SUCCESS
}
