//! Frame accounting and page-table validation for PV guests.
