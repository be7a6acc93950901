"""Workouts read from files people bring: GPX, TCX and FIT (each optionally gzipped) and CSV.

``upload`` turns an uploaded file into activities (refusing whole files that are unsafe or
unreadable), ``formats`` holds one reader per format on the well-kept parsers, ``sports`` maps
each format's sport names to our workout types, and ``service`` stores what was read as finished
workouts that count like live ones, once, however often the file is imported.
"""
