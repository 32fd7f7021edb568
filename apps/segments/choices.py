SEGMENT_ENTERED = "segment_entered"
SEGMENT_EXITED = "segment_exited"
