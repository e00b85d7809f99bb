"""Face landmarks (DWPose), face regions, face-drop, motion amplitude and head angle."""
