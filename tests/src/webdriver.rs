//! A headless Chromium driven over WebDriver (Debian's `chromium` and `chromium-driver`), with
//! plain HTTP calls: the few commands the dashboard's tests need, and the browser's console
//! and network logs.

use reqwest::Client;
use serde_json::{Value, json};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where Debian installs them; `CHROMEDRIVER` and `CHROMIUM` override.
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";
/// W3C's key for an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// A chromedriver process on a loopback port and one browser session in it. Dropping it ends
/// the session's process.
pub struct Browser {
    driver: Child,
    client: Client,
    base: String,
}

fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

impl Browser {
    /// Starts chromedriver and a headless Chromium with a window `width` × `height`.
    pub async fn start(width: u32, height: u32) -> Result<Self, Error> {
        let driver_path = std::env::var("CHROMEDRIVER").unwrap_or_else(|_| CHROMEDRIVER.into());
        let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| CHROMIUM.into());
        if !std::path::Path::new(&driver_path).exists() {
            return Err(format!(
                "{driver_path} is missing: install Chromium and its driver (Debian: apt-get install -y chromium chromium-driver; infra/test does it)"
            )
            .into());
        }
        let port = free_port()?;
        // chromedriver accepts local connections only unless told otherwise.
        let driver = Command::new(&driver_path)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        buildlore_providers::install_crypto();
        let client = Client::builder().timeout(Duration::from_secs(60)).build()?;
        let mut browser = Browser {
            driver,
            client,
            base: format!("http://127.0.0.1:{port}"),
        };
        let started = Instant::now();
        loop {
            let ready = browser
                .client
                .get(format!("{}/status", browser.base))
                .send()
                .await
                .ok()
                .map(|r| r.status().is_success())
                .unwrap_or(false);
            if ready {
                break;
            }
            if started.elapsed() > Duration::from_secs(20) {
                return Err("chromedriver did not start within 20 s".into());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--no-first-run", "--disable-extensions", "--disable-background-networking",
                         "--disable-component-update", "--disable-sync", "--lang=en-GB",
                         "--force-device-scale-factor=1", "--hide-scrollbars",
                         format!("--window-size={width},{height}")],
            },
            "goog:loggingPrefs": {"browser": "ALL", "performance": "ALL"},
        }}});
        let session = browser.post_raw("/session", &capabilities).await?;
        let id = session["value"]["sessionId"]
            .as_str()
            .ok_or_else(|| format!("no session from chromedriver: {session}"))?
            .to_string();
        browser.base = format!("{}/session/{id}", browser.base);
        Ok(browser)
    }

    async fn post_raw(&self, path: &str, body: &Value) -> Result<Value, Error> {
        let base = self.base.split("/session/").next().unwrap_or(&self.base);
        let answer: Value = self
            .client
            .post(format!("{base}{path}"))
            .json(body)
            .send()
            .await?
            .json()
            .await?;
        Ok(answer)
    }

    async fn command(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, Error> {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await?;
        let status = response.status();
        let answer: Value = response.json().await?;
        if !status.is_success() {
            return Err(format!("WebDriver {path}: {status} {}", answer["value"]).into());
        }
        Ok(answer["value"].clone())
    }

    async fn post(&self, path: &str, body: Value) -> Result<Value, Error> {
        self.command(reqwest::Method::POST, path, Some(body)).await
    }

    pub async fn goto(&self, url: &str) -> Result<(), Error> {
        self.post("/url", json!({"url": url})).await.map(drop)
    }

    pub async fn current_url(&self) -> Result<String, Error> {
        let value = self.command(reqwest::Method::GET, "/url", None).await?;
        Ok(value.as_str().unwrap_or_default().to_string())
    }

    /// Runs `script` (a function body; `arguments` holds `args`) and returns its value.
    pub async fn execute(&self, script: &str, args: Vec<Value>) -> Result<Value, Error> {
        self.post("/execute/sync", json!({"script": script, "args": args}))
            .await
    }

    /// The first element matching `css`, if any.
    pub async fn find(&self, css: &str) -> Result<Option<String>, Error> {
        let found = self
            .post("/elements", json!({"using": "css selector", "value": css}))
            .await?;
        Ok(found
            .as_array()
            .and_then(|list| list.first())
            .and_then(|element| element[ELEMENT].as_str())
            .map(String::from))
    }

    /// Waits up to `timeout` for an element matching `css`.
    pub async fn wait_for(&self, css: &str, timeout: Duration) -> Result<String, Error> {
        let started = Instant::now();
        loop {
            if let Some(element) = self.find(css).await? {
                return Ok(element);
            }
            if started.elapsed() > timeout {
                let body = match self.text_of("main").await {
                    Ok(text) => text,
                    Err(_) => self.text_of("body").await.unwrap_or_default(),
                };
                return Err(format!(
                    "no element {css:?} within {timeout:?}; the page says: {}",
                    body.chars().take(600).collect::<String>()
                )
                .into());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits up to `timeout` for `script` to return true.
    pub async fn wait_until(
        &self,
        what: &str,
        script: &str,
        timeout: Duration,
    ) -> Result<(), Error> {
        let started = Instant::now();
        loop {
            if self.execute(script, vec![]).await? == json!(true) {
                return Ok(());
            }
            if started.elapsed() > timeout {
                return Err(format!("{what}: not within {timeout:?}").into());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn click(&self, css: &str) -> Result<(), Error> {
        let element = self.wait_for(css, Duration::from_secs(10)).await?;
        self.post(&format!("/element/{element}/click"), json!({}))
            .await
            .map(drop)
    }

    pub async fn type_into(&self, css: &str, text: &str) -> Result<(), Error> {
        let element = self.wait_for(css, Duration::from_secs(10)).await?;
        self.post(&format!("/element/{element}/value"), json!({"text": text}))
            .await
            .map(drop)
    }

    /// The visible text of the first element matching `css`.
    pub async fn text_of(&self, css: &str) -> Result<String, Error> {
        let value = self
            .execute(
                "const el = document.querySelector(arguments[0]); return el ? el.innerText : null;",
                vec![json!(css)],
            )
            .await?;
        value
            .as_str()
            .map(String::from)
            .ok_or_else(|| format!("no element {css:?}").into())
    }

    pub async fn set_window(&self, width: u32, height: u32) -> Result<(), Error> {
        self.post("/window/rect", json!({"width": width, "height": height}))
            .await
            .map(drop)
    }

    /// A PNG of the viewport.
    pub async fn screenshot(&self) -> Result<Vec<u8>, Error> {
        use base64::Engine;
        let value = self
            .command(reqwest::Method::GET, "/screenshot", None)
            .await?;
        let text = value.as_str().ok_or("no screenshot")?;
        Ok(base64::engine::general_purpose::STANDARD.decode(text)?)
    }

    /// Log entries of `kind` (`browser`: the console; `performance`: DevTools events) since
    /// the last call.
    pub async fn log(&self, kind: &str) -> Result<Vec<Value>, Error> {
        let value = self.post("/se/log", json!({"type": kind})).await?;
        Ok(value.as_array().cloned().unwrap_or_default())
    }

    /// The URL of every request the page made since the last call (from DevTools' network
    /// events in the performance log).
    pub async fn requested_urls(&self) -> Result<Vec<String>, Error> {
        let mut urls = Vec::new();
        for entry in self.log("performance").await? {
            let Some(message) = entry["message"].as_str() else {
                continue;
            };
            let Ok(event) = serde_json::from_str::<Value>(message) else {
                continue;
            };
            if event["message"]["method"] == "Network.requestWillBeSent"
                && let Some(url) = event["message"]["params"]["request"]["url"].as_str()
            {
                urls.push(url.to_string());
            }
        }
        Ok(urls)
    }
}

impl Browser {
    /// Ends the session (and its browser) before chromedriver itself.
    pub async fn quit(self) {
        let _ = self.command(reqwest::Method::DELETE, "", None).await;
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // chromedriver ends its browsers when it exits.
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
