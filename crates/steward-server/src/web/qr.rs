//! The QR code of an `otpauth://` URI as inline SVG (drawn from the
//! modules qrcodegen computes; no image crate, nothing fetched).

use maud::{html, Markup, PreEscaped};
use qrcodegen::{QrCode, QrCodeEcc};

/// The QR code of `text` as an `<svg>` element, or nothing if it cannot be encoded.
pub fn svg(text: &str) -> Markup {
    let Ok(code) = QrCode::encode_text(text, QrCodeEcc::Medium) else {
        return html! {};
    };
    let border = 4;
    let size = code.size();
    let mut path = String::new();
    for y in 0..size {
        for x in 0..size {
            if code.get_module(x, y) {
                path.push_str(&format!("M{},{}h1v1h-1z", x + border, y + border));
            }
        }
    }
    let dim = size + 2 * border;
    PreEscaped(format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {dim} {dim}\" width=\"{px}\" height=\"{px}\" \
         role=\"img\" aria-label=\"QR code of the authenticator set-up link\" shape-rendering=\"crispEdges\">\
         <rect width=\"100%\" height=\"100%\" fill=\"#fff\"/><path d=\"{path}\" fill=\"#000\"/></svg>",
        px = dim * 6
    ))
}

#[cfg(test)]
mod tests {
    #[test]
    fn draws_a_square_svg() {
        let s = super::svg("otpauth://totp/Steward:alice?secret=JBSWY3DPEHPK3PXP&issuer=Steward").into_string();
        assert!(s.starts_with("<svg") && s.contains("<path d=\"M"), "{s}");
    }
}
