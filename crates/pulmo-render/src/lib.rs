//! Pictures for people who read neither SEG nor SR: the summary page of a study's findings,
//! drawn as a plain RGB image that a Secondary Capture carries into any viewer.
//!
//! [`Canvas`] is the drawing surface (rectangles, lines, 8x8 bitmap text); [`summary_page`]
//! lays out the page: a warning banner, the exam, the nodule table, and per nodule a crop of
//! its key slice with its outline and Lung-RADS axes.

mod canvas;
mod page;

pub use canvas::{Canvas, Rgb};
pub use page::{summary_page, PAGE_WIDTH};
