//! Text as one URL path segment or query value: every byte but letters, digits and `-_.~`
//! percent-encoded (`group/app` becomes `group%2Fapp`). The one encoder every URL we build
//! uses: provider API paths, Bedrock model ids, Location headers and dashboard links.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// RFC 3986's unreserved characters stay; everything else is encoded.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

pub fn encode_component(text: &str) -> String {
    utf8_percent_encode(text, COMPONENT).to_string()
}

#[cfg(test)]
mod tests {
    use super::encode_component;

    #[test]
    fn only_unreserved_characters_stay() {
        assert_eq!(encode_component("group/sub app"), "group%2Fsub%20app");
        assert_eq!(encode_component("a-b_c.d~e"), "a-b_c.d~e");
        assert_eq!(encode_component("é?&#%+"), "%C3%A9%3F%26%23%25%2B");
    }
}
