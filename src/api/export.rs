//! Export of training data as provider JSONL.
//!
//! `public.export_training_dataset_openai_jsonl` itself is a SQL function (see
//! `sql/finalize.sql`) that Postgres inlines into the caller's query; it calls the
//! two functions here: the argument check (once, before the first row) and the
//! line encoder (once per row).

use crate::core::{jsonl, split::Split};
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
    let q = store::numeric_f64(&min_quality);
    if !(0.0..=10.0).contains(&q) {
        return Err(VibeError::OutOfRange(format!(
            "p_min_quality_score must be between 0 and 10, got {min_quality}"
        )));
    }
    Ok(())
}

/// Raise 42704 unless the dataset exists; return true. STABLE: evaluated once,
/// as a one-time filter, before the export reads any row.
#[pg_extern(stable)]
fn check_dataset_exists(p_dataset_id: Option<Uuid>) -> bool {
    let id = required(p_dataset_id, "p_dataset_id").or_raise();
    Spi::connect(|c| store::require_dataset(c, id)).or_raise();
    true
}

/// `vibe_ft.openai_chat_line(jsonb) RETURNS text`, declared in `sql/finalize.sql`.
///
/// Prints the jsonb with Postgres' own printer (which escapes strings exactly as
/// JSON requires) and compacts it straight into the result text: one pass, one
/// allocation, no JSON tree.
#[unsafe(no_mangle)]
pub extern "C" fn pg_finfo_vibe_ft_openai_chat_line() -> &'static pg_sys::Pg_finfo_record {
    const V1: pg_sys::Pg_finfo_record = pg_sys::Pg_finfo_record { api_version: 1 };
    &V1
}

#[pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn vibe_ft_openai_chat_line(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    // STRICT: the argument is never NULL here.
    let arg = pgrx::fcinfo::pg_getarg_datum_raw(fcinfo, 0);
    let jb = pg_sys::pg_detoast_datum(arg.cast_mut_ptr()) as *mut pg_sys::Jsonb;
    let size = pgrx::varlena::varsize(jb as *const pg_sys::varlena) as i32;
    let printed = pg_sys::JsonbToCString(std::ptr::null_mut(), &raw mut (*jb).root, size);
    let bytes = std::ffi::CStr::from_ptr(printed).to_bytes();

    let cap = pg_sys::VARHDRSZ + bytes.len() + jsonl::LINE_OVERHEAD;
    let text = pg_sys::palloc(cap) as *mut u8;
    let body = std::slice::from_raw_parts_mut(text.add(pg_sys::VARHDRSZ), cap - pg_sys::VARHDRSZ);
    let n = jsonl::chat_line_into_slice(bytes, body);
    pgrx::varlena::set_varsize_4b(text as *mut pg_sys::varlena, (pg_sys::VARHDRSZ + n) as i32);

    pg_sys::pfree(printed as *mut std::ffi::c_void);
    if jb as *mut std::ffi::c_void != arg.cast_mut_ptr() {
        pg_sys::pfree(jb as *mut std::ffi::c_void);
    }
    pg_sys::Datum::from(text)
}
