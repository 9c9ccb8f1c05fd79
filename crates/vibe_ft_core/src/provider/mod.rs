//! What the job runner needs to know about fine-tuning providers, independent of
//! any HTTP client: when a failure is worth retrying and how long to wait
//! (`retry`), and the shapes of OpenAI's (and Azure OpenAI v1's) fine-tuning
//! objects, read tolerantly (`openai`).

pub mod openai;
pub mod retry;
