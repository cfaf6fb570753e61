//! A page's `Link` objects (pipelines/extract.py `LinkRows.rows`) made from its columns in one
//! call: each object allocated as its class allocates it and its slots set as their own
//! member descriptors set them (at the offsets the class's member table gives, else through
//! the descriptors' setters), as `Link(*row)`'s generated `__init__` sets them, without a
//! Python frame per row (`list(map(Link, *columns))` was ~0.24 µs a row, ~0.05 ms a page).
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyList, PyTuple, PyType};

/// One object of *cls* per row of *columns* (lists of one length, one per slot of *slots*,
/// the class's member descriptors in the columns' order): the slots set to the row's values,
/// but a false value of column *own* (the rel lists: the core's rows share one empty list)
/// set to a new empty list, as `rel or []` (extract.py `own_rels`). The caller vouches that *cls* is a slots
/// class whose `__init__` only sets these slots.
#[pyfunction]
fn link_objects<'py>(
    py: Python<'py>,
    cls: &Bound<'py, PyType>,
    slots: &Bound<'py, PyTuple>,
    columns: &Bound<'py, PyTuple>,
    own: usize,
) -> PyResult<Bound<'py, PyList>> {
    let width = slots.len();
    if columns.len() != width || own >= width {
        return Err(PyValueError::new_err("one column per slot"));
    }
    let mut lists = Vec::with_capacity(width);
    let mut setters = Vec::with_capacity(width);
    let mut descriptors = Vec::with_capacity(width);
    for (slot, column) in slots.iter().zip(columns.iter()) {
        let column = column.cast_into::<PyList>()?;
        // A member descriptor of *cls* (its __objclass__), as `Link.target_url` is.
        if !slot.getattr("__objclass__")?.is(cls) {
            return Err(PyTypeError::new_err("a slot that is not the class's own"));
        }
        // SAFETY: the descriptor's type is a live type object; the slot read is a C pointer.
        let set = unsafe { ffi::PyType_GetSlot(ffi::Py_TYPE(slot.as_ptr()), ffi::Py_tp_descr_set) };
        if set.is_null() {
            return Err(PyTypeError::new_err("a slot that cannot be set"));
        }
        // SAFETY: the tp_descr_set slot of a type is a descrsetfunc.
        setters
            .push(unsafe { std::mem::transmute::<*mut std::ffi::c_void, ffi::descrsetfunc>(set) });
        lists.push(column);
        descriptors.push(slot);
    }
    let n = lists.first().map_or(0, |list| list.len());
    if lists.iter().any(|list| list.len() != n) {
        return Err(PyValueError::new_err("columns of one length"));
    }
    let type_ptr = cls.as_type_ptr();
    // Where each slot lives in an object, when the class's member table says and each slot is
    // a plain member descriptor (one that wraps it may set other values: review16-e16 1);
    // else each value goes through its descriptor's setter.
    let member = py.import("types")?.getattr("MemberDescriptorType")?;
    let plain = descriptors.iter().all(|slot| slot.get_type().is(&member));
    let offsets = if plain {
        slot_offsets(cls, &descriptors)?
    } else {
        None
    };
    // SAFETY: the class's allocator, as object.__new__ calls it (a heap type's slot).
    let alloc = unsafe { ffi::PyType_GetSlot(type_ptr, ffi::Py_tp_alloc) };
    if alloc.is_null() {
        return Err(PyTypeError::new_err("a class without an allocator"));
    }
    // SAFETY: the tp_alloc slot of a type is an allocfunc.
    let alloc = unsafe { std::mem::transmute::<*mut std::ffi::c_void, ffi::allocfunc>(alloc) };
    let out = PyList::empty(py);
    for i in 0..n {
        // SAFETY: each object is owned here until appended (then by the list, or dropped on
        // an error); each value is held (a new reference) while read, bounds checked by
        // PyList_GetItem (a list a finalizer shrank during an allocation gives NULL: an error);
        // the setters incref what they store.
        unsafe {
            let obj = alloc(type_ptr, 0);
            if obj.is_null() {
                return Err(PyErr::fetch(py));
            }
            let obj = Bound::from_owned_ptr(py, obj);
            for (j, ((list, set), slot)) in lists.iter().zip(&setters).zip(&descriptors).enumerate()
            {
                let borrowed = ffi::PyList_GetItem(list.as_ptr(), i as ffi::Py_ssize_t);
                if borrowed.is_null() {
                    return Err(PyErr::fetch(py));
                }
                // Owned while read: a truth test may run Python code that drops the list's
                // reference (review15-sp15 1).
                let mut held = Bound::from_borrowed_ptr(py, borrowed);
                if j == own {
                    // `rel or []`, as own_rels: a false rel (the shared empty list) a new list.
                    match ffi::PyObject_IsTrue(held.as_ptr()) {
                        0 => held = PyList::empty(py).into_any(),
                        -1 => return Err(PyErr::fetch(py)),
                        _ => {}
                    }
                }
                if let Some(offsets) = &offsets {
                    // What the setter (member_set) does: the object still of *cls* (Python
                    // code run by a truth test or a collection may have found it), the old
                    // value (NULL on a fresh object) released after the store (review16-e16 2).
                    if ffi::Py_TYPE(obj.as_ptr()) != type_ptr {
                        return Err(PyTypeError::new_err("an object whose class changed"));
                    }
                    let field = obj.as_ptr().cast::<u8>().offset(offsets[j]);
                    let field = field.cast::<*mut ffi::PyObject>();
                    let old = std::mem::replace(&mut *field, held.into_ptr());
                    ffi::Py_XDECREF(old);
                } else if set(slot.as_ptr(), obj.as_ptr(), held.as_ptr()) != 0 {
                    return Err(PyErr::fetch(py));
                }
            }
            out.append(obj)?;
        }
    }
    Ok(out)
}

/// The offset in *cls*'s objects of each of *slots* (its member descriptors), from the
/// class's member table (`PyType_GetSlot(cls, Py_tp_members)`, the `PyMemberDef`s `__slots__`
/// made: stable ABI): an object slot (`Py_T_OBJECT_EX`), writable, pointer-aligned, inside
/// `__basicsize__` past the object header, each its own. None if any is not so (or the table
/// is missing): the descriptors' setters are used. Storing at the offset is what the setter
/// does (the setters were ~37% of `link_objects`' instructions).
fn slot_offsets(
    cls: &Bound<'_, PyType>,
    slots: &[Bound<'_, PyAny>],
) -> PyResult<Option<Vec<isize>>> {
    let basic: isize = cls.getattr("__basicsize__")?.extract()?;
    // SAFETY: a live type object; the slot read is a C pointer (NULL if none).
    let table = unsafe { ffi::PyType_GetSlot(cls.as_type_ptr(), ffi::Py_tp_members) }
        .cast::<ffi::PyMemberDef>()
        .cast_const();
    if table.is_null() {
        return Ok(None);
    }
    let word = std::mem::size_of::<*mut ffi::PyObject>() as isize;
    let header = std::mem::size_of::<ffi::PyObject>() as isize;
    let mut offsets: Vec<isize> = Vec::with_capacity(slots.len());
    for slot in slots {
        let name = slot.getattr("__name__")?;
        let name = name.extract::<&str>()?;
        let mut found = None;
        // SAFETY: the table is the type's, ended by an entry whose name is NULL (as CPython
        // reads it); each name a C string. Bounded: a class has far fewer members.
        unsafe {
            let mut at = table;
            for _ in 0..4096 {
                let def = &*at;
                if def.name.is_null() {
                    break;
                }
                if std::ffi::CStr::from_ptr(def.name).to_bytes() == name.as_bytes() {
                    found = Some((def.type_code, def.flags, def.offset));
                    break;
                }
                at = at.add(1);
            }
        }
        let Some((kind, flags, offset)) = found else {
            return Ok(None);
        };
        if kind != ffi::Py_T_OBJECT_EX
            || flags & ffi::Py_READONLY != 0
            || offset < header
            || offset % word != 0
            || offset > basic - word
            || offsets.contains(&offset)
        {
            return Ok(None);
        }
        offsets.push(offset);
    }
    Ok(Some(offsets))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(link_objects, m)?)
}
