// placeholder created by the lead so the workspace parses; helper-1 replaces it with the criterion bench
fn main() {}
