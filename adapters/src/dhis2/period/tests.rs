//! Period parsing against dates computed by hand from a calendar.

use super::parse_period;

fn check(iso: &str, start: &str, end: &str) {
    let range = parse_period(iso).unwrap_or_else(|e| panic!("{iso}: {e}"));
    assert_eq!(
        (range.start.to_string(), range.end.to_string()),
        (start.to_owned(), end.to_owned()),
        "{iso}"
    );
}

fn check_bad(iso: &str, reason_contains: &str) {
    let error = parse_period(iso).unwrap_err();
    assert_eq!(error.value, iso);
    assert!(
        error.reason.contains(reason_contains),
        "{iso}: {}",
        error.reason
    );
    assert!(error.to_string().contains(&format!("{iso:?}")));
}

#[test]
fn daily_periods_are_single_days_with_real_calendar_dates() {
    check("20240131", "2024-01-31", "2024-01-31");
    check("20240229", "2024-02-29", "2024-02-29");
    check("20001231", "2000-12-31", "2000-12-31");
    check_bad("20230229", "not a calendar date");
    check_bad("20241301", "month 13");
    check_bad("20240132", "day 32");
}

#[test]
fn iso_weeks_start_on_monday_with_week_one_holding_january_fourth() {
    // 4 January 2024 is a Thursday: week 1 starts on Monday 1 January.
    check("2024W1", "2024-01-01", "2024-01-07");
    check("2024W5", "2024-01-29", "2024-02-04");
    check("2024W52", "2024-12-23", "2024-12-29");
    // 4 January 2021 is a Monday; 2021 has 52 weeks.
    check("2021W1", "2021-01-04", "2021-01-10");
    check_bad("2021W53", "week number 53");
    // 4 January 2019 is a Friday: week 1 starts on 31 December 2018.
    check("2019W1", "2018-12-31", "2019-01-06");
}

#[test]
fn week_fifty_three_exists_in_long_years_only() {
    // 2020 (leap, starts on Wednesday), 2015 and 2026 (start on Thursday).
    check("2020W53", "2020-12-28", "2021-01-03");
    check("2015W53", "2015-12-28", "2016-01-03");
    check("2026W53", "2026-12-28", "2027-01-03");
    check_bad("2024W53", "week number 53");
    check_bad("2024W0", "week number 0");
}

#[test]
fn weeks_with_other_start_days_hold_january_fourth_in_week_one() {
    // 4 January 2024 is a Thursday.
    check("2024WedW1", "2024-01-03", "2024-01-09");
    check("2024WedW5", "2024-01-31", "2024-02-06");
    check("2024ThuW1", "2024-01-04", "2024-01-10");
    check("2024ThuW5", "2024-02-01", "2024-02-07");
    check("2024SatW1", "2023-12-30", "2024-01-05");
    check("2024SatW5", "2024-01-27", "2024-02-02");
    check("2024SunW1", "2023-12-31", "2024-01-06");
    check("2024SunW5", "2024-01-28", "2024-02-03");
    // The documentation's example: 4 January 2015 is a Sunday.
    check("2015WedW5", "2015-01-28", "2015-02-03");
    // Thursday weeks of 2023 (4 January is a Wednesday): week 1 starts on
    // 29 December 2022, and 28 December 2023 starts week 53.
    check("2023ThuW1", "2022-12-29", "2023-01-04");
    check("2023ThuW53", "2023-12-28", "2024-01-03");
    check_bad("2024ThuW53", "week number 53");
}

#[test]
fn bi_weeks_pair_iso_weeks() {
    check("2024BiW1", "2024-01-01", "2024-01-14");
    check("2024BiW3", "2024-01-29", "2024-02-11");
    check("2024BiW26", "2024-12-16", "2024-12-29");
    check("2015BiW1", "2014-12-29", "2015-01-11");
    check_bad("2024BiW27", "bi-week number 27");
}

#[test]
fn months_and_bi_months_end_on_the_last_day_including_leap_february() {
    check("202401", "2024-01-01", "2024-01-31");
    check("202402", "2024-02-01", "2024-02-29");
    check("202302", "2023-02-01", "2023-02-28");
    check("190002", "1900-02-01", "1900-02-28");
    check("202412", "2024-12-01", "2024-12-31");
    check("202401B", "2024-01-01", "2024-02-29");
    check("202311B", "2023-11-01", "2023-12-31");
    check_bad("202402B", "odd month");
    check_bad("202413", "month 13");
}

#[test]
fn quarters_and_six_months() {
    check("2024Q1", "2024-01-01", "2024-03-31");
    check("2024Q4", "2024-10-01", "2024-12-31");
    check("2024NovQ1", "2023-11-01", "2024-01-31");
    check("2024NovQ2", "2024-02-01", "2024-04-30");
    check("2024NovQ4", "2024-08-01", "2024-10-31");
    check("2024S1", "2024-01-01", "2024-06-30");
    check("2024S2", "2024-07-01", "2024-12-31");
    check("2024AprilS1", "2024-04-01", "2024-09-30");
    check("2024AprilS2", "2024-10-01", "2025-03-31");
    check("2024NovS1", "2023-11-01", "2024-04-30");
    check("2024NovS2", "2024-05-01", "2024-10-31");
    check_bad("2024Q5", "period number 5");
    check_bad("2024S3", "period number 3");
}

#[test]
fn years_and_financial_years() {
    check("2024", "2024-01-01", "2024-12-31");
    check("2024April", "2024-04-01", "2025-03-31");
    check("2024July", "2024-07-01", "2025-06-30");
    check("2024Oct", "2024-10-01", "2025-09-30");
    // Leap day inside: financial year April 2023 ends on 31 March 2024.
    check("2023April", "2023-04-01", "2024-03-31");
    check("2024Nov", "2023-11-01", "2024-10-31");
}

#[test]
fn malformed_identifiers_name_the_value() {
    check_bad("", "four-digit year");
    check_bad("24Q1", "four-digit year");
    check_bad("2024X1", "not a DHIS2 period format");
    check_bad("2024W", "not a DHIS2 period format");
    check_bad("2024March", "not a DHIS2 period format");
    check_bad("2024012", "month (MM) or a day (MMdd)");
    check_bad("2024-01", "not a DHIS2 period format");
}

#[test]
fn fhir_period_uses_date_precision() {
    let period = parse_period("2024Q1").unwrap().to_fhir();
    assert_eq!(
        period,
        serde_json::json!({"start": "2024-01-01", "end": "2024-03-31"})
    );
}
