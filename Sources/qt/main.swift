print("qt")
