//! Word lists the generated traffic draws from. Short, but enough that paths, headers and
//! bodies look like a real API's and differ from exchange to exchange.

pub(crate) const FIRST_NAMES: &[&str] = &[
    "alice", "bob", "carol", "dmitri", "elena", "farid", "grace", "hiro", "ines", "jamal", "kofi", "lena", "mateo",
    "nadia", "oscar", "priya", "quinn", "rosa", "sven", "tariq", "uma", "victor", "wen", "ximena", "yusuf", "zoe",
];

pub(crate) const LAST_NAMES: &[&str] = &[
    "martin",
    "nguyen",
    "garcia",
    "smith",
    "kowalski",
    "okafor",
    "tanaka",
    "rossi",
    "muller",
    "haddad",
    "silva",
    "johansson",
    "patel",
    "dubois",
    "ivanova",
    "kim",
];

pub(crate) const CITIES: &[&str] = &[
    "Lisbon", "Nairobi", "Osaka", "Toronto", "Berlin", "Lima", "Pune", "Lyon", "Austin", "Krakow", "Seoul", "Accra",
    "Oslo", "Porto",
];

pub(crate) const PRODUCTS: &[&str] = &[
    "wireless mouse",
    "usb-c hub",
    "mechanical keyboard",
    "4k monitor",
    "noise cancelling headphones",
    "standing desk",
    "webcam",
    "laptop stand",
    "ergonomic chair",
    "portable ssd",
    "smart speaker",
    "fitness tracker",
];

pub(crate) const CATEGORIES: &[&str] =
    &["electronics", "books", "office", "garden", "toys", "sports", "grocery", "home"];

pub(crate) const ORDER_STATUS: &[&str] = &["pending", "paid", "shipped", "delivered", "cancelled", "refunded"];

pub(crate) const ROLES: &[&str] = &["admin", "member", "viewer", "billing", "support"];

pub(crate) const CURRENCIES: &[&str] = &["EUR", "USD", "GBP", "JPY", "INR", "BRL"];

pub(crate) const SORTS: &[&str] = &["created_at", "-created_at", "price", "-price", "name"];

pub(crate) const SEARCH_TERMS: &[&str] =
    &["wireless%20mouse", "usb+hub", "desk", "monitor%204k", "chair", "ssd%201tb", "gift+card"];

pub(crate) const USER_AGENTS: &[&str] = &[
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "okhttp/4.12.0",
    "python-requests/2.31.0",
    "Go-http-client/1.1",
    "axios/1.6.8",
    "curl/8.5.0",
    "PostmanRuntime/7.37.3",
    "MyShopApp/3.14.2 (iPhone; iOS 17.4.1; Scale/3.00)",
];

pub(crate) const MCP_CLIENTS: &[(&str, &str)] =
    &[("claude-ai", "0.1.0"), ("cursor-vscode", "1.0.0"), ("mcp-inspector", "0.14.0"), ("openai-agents", "0.0.17")];

pub(crate) const SERVER_NAMES: &[&str] = &[
    "api.shop.example.com",
    "users.internal",
    "payments.internal",
    "auth.example.com",
    "inventory.svc.cluster.local",
    "mcp.example.com",
    "orders-api.example.net",
    "search.internal",
];

pub(crate) const SERVER_SOFTWARE: &[&str] =
    &["nginx/1.25.3", "envoy", "gunicorn", "Kestrel", "uvicorn", "Apache/2.4.58 (Debian)", "Jetty(11.0.20)"];

pub(crate) const MCP_TOOLS: &[&str] =
    &["get_weather", "search_docs", "query_database", "read_file", "send_email", "create_ticket"];

pub(crate) const DOC_QUERIES: &[&str] = &[
    "how to rotate api keys",
    "rate limits for the orders endpoint",
    "refund policy for digital goods",
    "configure sso with okta",
    "webhook retry schedule",
];

pub(crate) const FILE_PATHS: &[&str] =
    &["/srv/app/config/settings.yaml", "/srv/app/README.md", "/var/log/app/error.log", "/home/dev/project/src/main.rs"];

pub(crate) const LOREM: &[&str] = &[
    "lorem",
    "ipsum",
    "dolor",
    "sit",
    "amet",
    "consectetur",
    "adipiscing",
    "elit",
    "sed",
    "do",
    "eiusmod",
    "tempor",
    "incididunt",
    "ut",
    "labore",
    "et",
    "dolore",
    "magna",
    "aliqua",
];

pub(crate) const MCP_USER_AGENTS: &[&str] = &["node", "python-httpx/0.28.1", "undici", "Go-http-client/1.1"];
