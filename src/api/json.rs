//! `jsonb` arguments. pgrx's `JsonB` panics (XX000) on a value serde_json will
//! not read: a valid jsonb nested deeper than 128 levels. `Json` reads the same
//! way and answers such an argument as the caller's mistake (22023).

use crate::error::VibeError;
use pgrx::callconv::{Arg, ArgAbi};
use pgrx::pg_sys;
use pgrx::pgrx_sql_entity_graph::metadata::{
    ArgumentError, ReturnsError, ReturnsRef, SqlMappingRef, SqlTranslatable, TypeOrigin,
};
use pgrx::FromDatum;

/// A `jsonb` argument, read into a `serde_json::Value`.
pub struct Json(pub serde_json::Value);

impl FromDatum for Json {
    unsafe fn from_polymorphic_datum(datum: pg_sys::Datum, is_null: bool, _: pg_sys::Oid) -> Option<Json> {
        if is_null {
            return None;
        }
        // SAFETY: a non-null jsonb datum; jsonb_out prints it as text.
        let text = unsafe {
            let detoasted = pg_sys::pg_detoast_datum_packed(datum.cast_mut_ptr());
            let cstr = pgrx::direct_function_call::<&core::ffi::CStr>(pg_sys::jsonb_out, &[Some(detoasted.into())])
                .unwrap_or_else(|| VibeError::Internal("jsonb_out returned NULL".into()).raise());
            let text = cstr.to_string_lossy().into_owned();
            pg_sys::pfree(cstr.as_ptr() as *mut core::ffi::c_void);
            if detoasted != datum.cast_mut_ptr() {
                pg_sys::pfree(detoasted as *mut core::ffi::c_void);
            }
            text
        };
        match serde_json::from_str(&text) {
            Ok(v) => Some(Json(v)),
            Err(e) => VibeError::InvalidArgument(format!(
                "a jsonb argument vibe_ft cannot read: {e} (JSON nested up to 128 levels is read)"
            ))
            .raise(),
        }
    }
}

unsafe impl<'fcx> ArgAbi<'fcx> for Json {
    unsafe fn unbox_arg_unchecked(arg: Arg<'_, 'fcx>) -> Self {
        let index = arg.index();
        unsafe { arg.unbox_arg_using_from_datum() }
            .unwrap_or_else(|| VibeError::Internal(format!("argument {index} must not be null")).raise())
    }
}

unsafe impl SqlTranslatable for Json {
    const TYPE_IDENT: &'static str = pgrx::pgrx_resolved_type!(Json);
    const TYPE_ORIGIN: TypeOrigin = TypeOrigin::External;
    const ARGUMENT_SQL: Result<SqlMappingRef, ArgumentError> = Ok(SqlMappingRef::literal("jsonb"));
    const RETURN_SQL: Result<ReturnsRef, ReturnsError> = Ok(ReturnsRef::One(SqlMappingRef::literal("jsonb")));
}
