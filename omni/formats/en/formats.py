# Dates as a back office reads them in a table: "7 Dec 2026, 14:05", not "Dec. 7, 2026, 2:05 p.m.".
DATETIME_FORMAT = "j M Y, H:i"
DATE_FORMAT = "j M Y"
TIME_FORMAT = "H:i"
SHORT_DATETIME_FORMAT = "j M Y, H:i"
