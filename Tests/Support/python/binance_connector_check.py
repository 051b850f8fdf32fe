"""Drives the simulator with Binance's own Python connector (binance-futures-connector), unchanged.

Environment: QT_SIM_URL (http://127.0.0.1:PORT), QT_SIM_WS (ws://127.0.0.1:PORT), QT_API_KEY,
QT_API_SECRET. Prints one line per step and exits non-zero on the first thing that does not work.
"""
import json
import os
import sys
import threading
import time
from decimal import Decimal

from binance.error import ClientError
from binance.um_futures import UMFutures
from binance.websocket.um_futures.websocket_client import UMFuturesWebsocketClient

SYMBOL = "BTCUSDT"


def check(condition, what):
    if not condition:
        print(f"FAILED: {what}", flush=True)
        sys.exit(1)
    print(f"ok: {what}", flush=True)


client = UMFutures(key=os.environ["QT_API_KEY"], secret=os.environ["QT_API_SECRET"], base_url=os.environ["QT_SIM_URL"])

account = client.account()  # GET /fapi/v3/account
check(Decimal(account["totalWalletBalance"]) > 0 and isinstance(account["positions"], list), "account (v3)")
balances = client.balance()  # GET /fapi/v3/balance
check(any(b["asset"] == "USDT" and Decimal(b["balance"]) > 0 for b in balances), "balance (v3)")
klines = client.klines(SYMBOL, "1m", limit=5)
check(len(klines) == 5 and klines[0][0] < klines[-1][0], "klines")

info = client.exchange_info()
filters = {f["filterType"]: f for f in next(s for s in info["symbols"] if s["symbol"] == SYMBOL)["filters"]}
step = Decimal(filters["MARKET_LOT_SIZE"]["stepSize"])
mark = Decimal(client.mark_price(SYMBOL)["markPrice"])
quantity = ((Decimal(200) / mark) / step).to_integral_value() * step

listen_key = client.new_listen_key()["listenKey"]
check(len(listen_key) > 20, "listenKey")
client.renew_listen_key(listen_key)
events = []
received = threading.Event()


def on_message(_, message):
    event = json.loads(message)
    events.append(event)
    if event.get("e") == "ORDER_TRADE_UPDATE":
        received.set()


stream = UMFuturesWebsocketClient(stream_url=os.environ["QT_SIM_WS"], on_message=on_message)
stream.user_data(listen_key=listen_key)
time.sleep(0.5)  # the SUBSCRIBE reaches the server before the order

order = client.new_order(symbol=SYMBOL, side="BUY", type="MARKET", quantity=str(quantity), newClientOrderId="py-connector-1")
check(order["status"] == "FILLED" and Decimal(order["executedQty"]) == quantity, "MARKET order")
check(received.wait(10), "ORDER_TRADE_UPDATE over the user data stream")
update = next(e for e in events if e.get("e") == "ORDER_TRADE_UPDATE")["o"]
check(update["c"] == "py-connector-1" and update["X"] == "FILLED" and Decimal(update["l"]) == quantity, "the event is the order's fill")
check(any(e.get("e") == "ACCOUNT_UPDATE" for e in events), "ACCOUNT_UPDATE over the user data stream")

positions = client.get_position_risk(symbol=SYMBOL)  # GET /fapi/v3/positionRisk
check(len(positions) == 1 and Decimal(positions[0]["positionAmt"]) == quantity, "positionRisk (v3)")
orders = client.get_all_orders(symbol=SYMBOL)
check(any(o["clientOrderId"] == "py-connector-1" for o in orders), "allOrders")

# The connector has no Algo Order method; its signed request is how a user calls a new endpoint.
trigger = (mark * Decimal("0.9") / Decimal(filters["PRICE_FILTER"]["tickSize"])).to_integral_value() * Decimal(filters["PRICE_FILTER"]["tickSize"])
stop = client.sign_request("POST", "/fapi/v1/algoOrder", {"algoType": "CONDITIONAL", "symbol": SYMBOL, "side": "SELL",
                                                           "type": "STOP_MARKET", "triggerPrice": str(trigger), "closePosition": "true",
                                                           "workingType": "MARK_PRICE", "clientAlgoId": "py-connector-stop"})
check(stop["algoStatus"] == "NEW" and stop["clientAlgoId"] == "py-connector-stop", "STOP_MARKET through the Algo API")
algos = client.sign_request("GET", "/fapi/v1/allAlgoOrders", {"symbol": SYMBOL})
check(any(a["clientAlgoId"] == "py-connector-stop" for a in algos), "allAlgoOrders")
deadline = time.time() + 5
while time.time() < deadline and not any(e.get("e") == "ALGO_UPDATE" for e in events):
    time.sleep(0.05)
check(any(e.get("e") == "ALGO_UPDATE" and e["o"]["caid"] == "py-connector-stop" for e in events), "ALGO_UPDATE over the user data stream")
income = client.get_income_history(symbol=SYMBOL)
check(any(i["incomeType"] == "COMMISSION" for i in income), "income")

try:
    client.klines(SYMBOL, "1m", limit=5000)
    check(False, "a bad parameter is refused")
except ClientError as error:
    check(error.status_code == 400 and error.error_code == -1130, f"a bad parameter is a Binance error ({error.error_code})")

stream.stop()
client.close_listen_key(listen_key)
print("all steps passed", flush=True)
