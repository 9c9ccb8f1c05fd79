//! Export of training data as provider JSONL.
//!
//! `public.export_training_dataset_openai_jsonl` itself is a SQL function (see
//! `sql/finalize.sql`) that Postgres inlines into the caller's query; it calls the
//! two functions here: the argument check (once, before the first row) and the
//! line encoder (once per row).

use crate::core::{jsonb, jsonl, split::Split};
use crate::error::{required, OrRaise, Result, VibeError};
use crate::store;
use pgrx::prelude::*;
use pgrx::{pg_sys, AnyNumeric, Uuid};

/// Check the export's arguments; raise a clear error or return true.
///
/// IMMUTABLE and free of table access on purpose: when the arguments are
/// constants the planner evaluates it while planning, so a NULL argument raises
/// here instead of being folded into a silently empty `WHERE false`.
#[pg_extern(immutable, parallel_safe)]
// Runs no SQL: nothing in it resolves through search_path, so it is not pinned
// (a SET clause costs every call ~2 us; the pure functions run per row).
fn check_export_args(
    p_dataset_id: Option<Uuid>,
    p_split: Option<&str>,
    p_min_quality_score: Option<AnyNumeric>,
) -> bool {
    check_export(p_dataset_id, p_split, p_min_quality_score).or_raise();
    true
}

fn check_export(dataset_id: Option<Uuid>, split: Option<&str>, min_quality: Option<AnyNumeric>) -> Result<()> {
    required(dataset_id, "p_dataset_id")?;
    let split = required(split, "p_split")?;
    let min_quality = required(min_quality, "p_min_quality_score")?;
    if Split::parse(split).is_none() {
        return Err(VibeError::InvalidArgument(format!(
            "p_split must be 'train' or 'validation', got '{split}'"
        )));
    }
    super::require_quality(&min_quality, "p_min_quality_score")
}

/// Raise 42704 unless the dataset exists; return true. STABLE: evaluated once,
/// as a one-time filter, before the export reads any row.
#[pg_extern(stable)]
#[search_path(pg_catalog, pg_temp)]
fn check_dataset_exists(p_dataset_id: Option<Uuid>) -> bool {
    let id = required(p_dataset_id, "p_dataset_id").or_raise();
    Spi::connect(|c| store::require_dataset(c, id)).or_raise();
    true
}

/// `vibe_ft.openai_chat_line(jsonb) RETURNS text`, declared in `sql/finalize.sql`.
///
/// Reads the stored jsonb's binary container and writes compact JSON in one pass
/// (`core::jsonb`), escaping strings eight bytes at a time; Postgres' own printer
/// spends most of its time escaping one byte at a time. Should the container
/// ever not parse, it falls back to printing with Postgres and compacting.
#[unsafe(no_mangle)]
pub extern "C" fn pg_finfo_vibe_ft_openai_chat_line() -> &'static pg_sys::Pg_finfo_record {
    const V1: pg_sys::Pg_finfo_record = pg_sys::Pg_finfo_record { api_version: 1 };
    &V1
}

thread_local! {
    /// Reused across rows so the export allocates nothing per row but its result.
    static LINE: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Lines this backend printed with the fallback (Postgres' printer) because the
/// binary reader refused the container. Expected to stay 0; tests check it.
static FALLBACKS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

#[allow(dead_code)] // read by the in-database tests
pub(crate) fn fallbacks() -> u64 {
    FALLBACKS.load(std::sync::atomic::Ordering::Relaxed)
}

const PREFIX: &[u8] = b"{\"messages\":";

#[pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn vibe_ft_openai_chat_line(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    // STRICT: the argument is never NULL here.
    let arg = pgrx::fcinfo::pg_getarg_datum_raw(fcinfo, 0);
    let jb = pg_sys::pg_detoast_datum(arg.cast_mut_ptr()) as *mut pg_sys::Jsonb;
    let text = LINE.with_borrow_mut(|line| {
        line.clear();
        line.extend_from_slice(PREFIX);
        if write_compact(jb, line).is_err() {
            FALLBACKS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            line.truncate(PREFIX.len());
            let size = pgrx::varlena::varsize(jb as *const pg_sys::varlena) as i32;
            let printed = pg_sys::JsonbToCString(std::ptr::null_mut(), &raw mut (*jb).root, size);
            jsonl::compact_runs(std::ffi::CStr::from_ptr(printed).to_bytes(), |run| {
                line.extend_from_slice(run)
            });
            pg_sys::pfree(printed as *mut std::ffi::c_void);
        }
        line.push(b'}');
        let text = pg_sys::palloc(pg_sys::VARHDRSZ + line.len()) as *mut u8;
        std::ptr::copy_nonoverlapping(line.as_ptr(), text.add(pg_sys::VARHDRSZ), line.len());
        pgrx::varlena::set_varsize_4b(text as *mut pg_sys::varlena, (pg_sys::VARHDRSZ + line.len()) as i32);
        text
    });
    if jb as *mut std::ffi::c_void != arg.cast_mut_ptr() {
        pg_sys::pfree(jb as *mut std::ffi::c_void);
    }
    pg_sys::Datum::from(text)
}

/// Append the compact JSON of a detoasted jsonb, read from its binary container.
///
/// # Safety
/// `jb` must point to a detoasted (4-byte header) jsonb varlena.
pub(crate) unsafe fn write_compact(
    jb: *const pg_sys::Jsonb,
    out: &mut Vec<u8>,
) -> std::result::Result<(), jsonb::JsonbError> {
    let size = pgrx::varlena::varsize(jb as *const pg_sys::varlena);
    let container = std::slice::from_raw_parts((jb as *const u8).add(pg_sys::VARHDRSZ), size - pg_sys::VARHDRSZ);
    out.reserve(size + jsonl::LINE_OVERHEAD);
    jsonb::write_container(container, out, &mut print_numeric)
}

/// Print a numeric stored inside a jsonb container (its varlena bytes) with
/// Postgres' `numeric_out`, exactly as `jsonb_out` would.
fn print_numeric(bytes: &[u8], out: &mut Vec<u8>) -> std::result::Result<(), jsonb::JsonbError> {
    if bytes.is_empty() {
        return Err(jsonb::JsonbError::Numeric);
    }
    // SAFETY: the bytes are a numeric varlena inside the detoasted jsonb, which
    // outlives this call; from_datum copies what it needs.
    let n = unsafe { AnyNumeric::from_datum(pg_sys::Datum::from(bytes.as_ptr()), false) };
    let n = n.ok_or(jsonb::JsonbError::Numeric)?;
    out.extend_from_slice(n.to_string().as_bytes());
    Ok(())
}
