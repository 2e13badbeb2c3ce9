"""Names of the database and config field ids, and of the database record types.

The ids and their meanings are public facts from Tidepool's
``lib/drivers/abbott/freeStyleLibreConstants.js`` (``DB_FIELD_ID``, ``CFG_FIELD_ID``,
``DB_RECORD_TYPE``), which its authors took from Abbott's specification. The names here are
ours (snake_case, spelling mistakes of the source corrected). A field id that is not listed is
kept by its number (``field_<id>``), never dropped.
"""

from __future__ import annotations

DB_FIELDS: dict[int, str] = {
    0: "record_number", 7: "time_valid", 8: "record_type", 9: "reader_time",
    10: "user_time_offset",
    20: "result", 23: "test_type", 24: "smart_tags", 25: "long_acting_insulin_recorded",
    26: "rapid_acting_insulin", 28: "medication", 29: "exercise", 30: "trend",
    32: "rapid_insulin_record_pointer", 33: "rapid_insulin_data_flag",
    34: "long_acting_insulin", 35: "glycemic_alarm", 36: "grams_per_serving",
    37: "serving_count", 38: "meal_type", 39: "grams_of_carb", 40: "food_data_flag",
    41: "food_quick_tag", 42: "result_old_reader_time", 43: "result_old_user_offset",
    44: "result_old_valid", 49: "data_crc",
    50: "smart_tag_0", 51: "smart_tag_1", 52: "smart_tag_2", 53: "smart_tag_3",
    54: "smart_tag_4", 55: "smart_tag_5", 56: "smart_tag_crc",
    57: "result_data_quality_error", 58: "result_unlogged_insulin", 59: "effective_time",
    60: "wrap_record_number", 61: "result_status",
    70: "rapid_insulin_result", 71: "signed_override", 72: "signed_correction", 73: "iob",
    74: "meal_insulin", 75: "unlogged_insulin", 76: "time_offset", 77: "insulin_crc",
    78: "manual_rapid_insulin_result", 79: "insulin_record_wrap",
    150: "glucose", 151: "first_flag", 152: "time_change_flag", 153: "food_flag",
    154: "historical_rapid_acting_insulin", 155: "historical_crc",
    156: "historical_data_quality_error", 157: "life_counter", 158: "historical_data_wrap",
    160: "error_code", 161: "error_data", 165: "old_reader_time", 166: "old_user_offset",
    167: "valid", 168: "rtc_counter", 170: "patient_config", 171: "factory_config",
    172: "cal_config_clear", 175: "recovery_item",
    181: "low_voltage", 182: "loss_of_clock", 183: "loss_of_lock", 184: "watchdog",
    185: "external_pin_reset", 186: "power_on_reset", 187: "jtag_reset", 188: "lock_up_arm",
    189: "software_reset", 190: "mdm_ap_reset", 191: "ez_port_reset", 192: "stop_mode_reset",
    193: "old_mask_mode", 194: "new_mask_mode", 195: "pdu_state", 196: "written_by_ui",
    197: "event_wrap",
    203: "high_correction", 204: "low_correction", 205: "correction_factor",
    206: "fixed_dose_breakfast", 207: "fixed_dose_lunch", 208: "fixed_dose_dinner",
    209: "morning_carb_insulin", 210: "mid_day_carb_insulin", 211: "evening_carb_insulin",
    212: "night_carb_insulin", 213: "morning_units", 214: "mid_day_units",
    215: "evening_units", 216: "night_units", 217: "grams_units", 218: "carbs",
    219: "units_time_of_day_block", 220: "carb_time_of_day_block",
    221: "morning_high_correction", 222: "morning_low_correction",
    223: "mid_day_high_correction", 224: "mid_day_low_correction",
    225: "evening_high_correction", 226: "evening_low_correction",
    227: "night_high_correction", 228: "night_low_correction",
    229: "correction_time_of_day_block", 230: "morning_factor", 231: "mid_day_factor",
    232: "evening_factor", 233: "night_factor", 234: "insulin_duration",
    235: "target_time_of_day_block", 236: "bob_symbol", 237: "calculator_off_flag",
    239: "strip_count", 241: "scan_counter", 242: "activation_count", 253: "event_crc",
}

_PERIODS = ("all_day", "morning", "midday", "evening", "night")

CFG_FIELDS: dict[int, str] = {
    1025: "system_type", 1026: "market_level", 1027: "market_sub_level",
    1028: "market_puck_level", 1029: "brand_name", 1056: "number_format",
    1057: "unit_of_measure", 1058: "insulin_calc_present", 1059: "allowable_meal_unit",
    1067: "glycemic_range_high", 1068: "glycemic_range_low", 1072: "time_conversion",
    1106: "first_time_startup_done", 1130: "patient_name", 1131: "patient_id",
    1132: "target_range_low", 1133: "target_range_high", 1134: "language",
    1135: "time_format", 1136: "insulin_dose_increment", 1137: "mask_mode_option",
    1138: "mask_mode_reminder", 1139: "mask_mode_hour", 1140: "mask_mode_minute",
    1160: "beeper_volume", 1161: "notification_sound", 1162: "notification_vibrate",
    1163: "button_sound", 1190: "insulin_mode", 1191: "easy_done_flag",
    1192: "advanced_done_flag", 1193: "carb_type", 1194: "carbs_per_serving",
    1195: "carb_ratio_flag",
    **{1196 + i: f"carb_ratio_{p}" for i, p in enumerate(_PERIODS)},
    1201: "serving_ratio_flag",
    **{1202 + i: f"serving_ratio_{p}" for i, p in enumerate(_PERIODS)},
    1207: "iob_icon_flag", 1208: "insulin_duration", 1209: "fixed_dose_breakfast",
    1210: "fixed_dose_lunch", 1211: "fixed_dose_dinner", 1212: "correction_factors_required",
    1213: "correction_type", 1214: "single_target_ratio_flag",
    **{1215 + i: f"single_target_ratio_{p}" for i, p in enumerate(_PERIODS)},
    1220: "low_target_ratio_flag",
    **{1221 + i: f"low_target_ratio_{p}" for i, p in enumerate(_PERIODS)},
    1226: "high_target_ratio_flag",
    **{1227 + i: f"high_target_ratio_{p}" for i, p in enumerate(_PERIODS)},
    1232: "bg_drop_correction_ratio_flag",
    **{1233 + i: f"bg_drop_{p}" for i, p in enumerate(_PERIODS)},
    **{1260 + i: f"reminder_string_{i}" for i in range(12)},
    **{1290 + i: f"smart_tag_{i}" for i in range(6)},
    1310: "bulk_storage", 1320: "sensor_state", 1321: "sensor_uid", 1322: "paired_flag",
    1323: "sensor_puck_info", 1324: "sensor_start_time",
    **{1400 + i: f"reminder_custom_string_{i + 1}" for i in range(9)},
    **{1415 + 5 * i + j: f"reminder_{i + 1}_{part}"
       for i in range(12)
       for j, part in enumerate(("type", "string_index", "hour", "minute", "second"))},
    **{1475 + i: f"reminder_{i + 1}_status" for i in range(12)},
    2047: "config_crc",
}

RECORD_TYPES: dict[int, str] = {
    255: "common_header", 0: "glucose_ketone_serving", 1: "glucose_ketone_meal",
    2: "glucose_ketone_carbs", 3: "unlogged_insulin", 4: "control_solution_test",
    5: "time_change_result", 6: "insulin_calculated", 7: "insulin_manual",
    12: "historical_data", 13: "result_record_wrap", 14: "insulin_wrap",
    17: "historical_wrap", 32: "error", 33: "low_battery", 34: "dead_battery",
    35: "time_change", 36: "lost_time", 37: "insulin_setup_1", 38: "insulin_setup_2",
    39: "insulin_setup_3", 40: "insulin_setup_4", 41: "restore_config",
    42: "clear_result_db", 43: "clear_scan_db", 44: "clear_activation_db",
    45: "clear_historical_db", 46: "user_time_change", 47: "clear_event_db",
    48: "recovery", 49: "microcontroller_reset", 50: "masked_mode_status",
    51: "sensor_expired", 52: "event_record_number_wrap",
}


def db_field_name(field_id: int) -> str:
    return DB_FIELDS.get(field_id, f"field_{field_id}")


def cfg_field_name(field_id: int) -> str:
    return CFG_FIELDS.get(field_id, f"field_{field_id}")


def record_type_name(record_type: int) -> str:
    return RECORD_TYPES.get(record_type, f"type_{record_type}")
